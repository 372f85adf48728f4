"""What a run is made of: the recipe config, the model and the prompt set."""
