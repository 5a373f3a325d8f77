"""Headless engine of initlab: build, initialise, probe and train deep networks with PyTorch."""
