"""What a run optimises: token statistics, rewards, advantages and losses (pure tensor code)."""
