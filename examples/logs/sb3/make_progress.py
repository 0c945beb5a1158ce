"""Two PPO runs on CartPole-v1 logging to ONE progress.csv (a shared SB3 logger), plus a Monitor file."""
# Run with stable-baselines3 2.9.2, gymnasium 1.4.0, torch 2.13.0+cpu (a scratch venv, not rlscale's):
#   python examples/logs/sb3/make_progress.py
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

OUT = Path(__file__).resolve().parent / "PPO_cartpole"
logger = configure(str(OUT), ["csv"])
for seed in (0, 1):
    env = Monitor(gym.make("CartPole-v1"), str(OUT / f"seed{seed}"))
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, n_epochs=2, seed=seed, verbose=0)
    model.set_logger(logger)
    model.learn(total_timesteps=2048)
logger.close()
