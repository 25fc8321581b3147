"""Training a pack's LoRA style adapter: RAFT-style examples and the SFT trainer."""
