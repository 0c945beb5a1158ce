"""Small RL jobs: a synthetic verifiable task, a tiny transformer, pretraining, GRPO-family RL.

Importing this package does not import torch; the modules that need it (model, pretrain, grpo,
runner, ...) import it themselves. See docs/rl.md.
"""
