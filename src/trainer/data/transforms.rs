//! MMSeg train transforms.
