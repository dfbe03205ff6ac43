"""clusterseg.datasets"""
