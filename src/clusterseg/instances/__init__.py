"""Instance segmentation (spatial embeddings, Neven et al. CVPR 2019) and a classical watershed baseline."""
