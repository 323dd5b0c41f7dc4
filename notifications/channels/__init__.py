"""Delivery channels: email (yagmail), WeCom application messages, WeCom group robots, files."""
