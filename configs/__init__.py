"""Experiment configs: each file's get_config() starts from base.py and overrides what differs."""
