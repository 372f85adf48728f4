"""Python behind each benchmark's task YAMLs; ``em_eval/tasks/<benchmark>/`` mirrors
``tasks/<benchmark>/*.yaml``."""
