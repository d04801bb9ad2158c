"""Test doubles for what this machine cannot have (a GPU, AWS). Named as doubles, used only at that edge."""
