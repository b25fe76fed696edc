"""Presentation: drawings and plots the lessons show, kept out of the domain layers.

* :mod:`~labsupport.plots.cluster` — ``draw_cluster``: a cluster as AWS describes it (VPC,
  Availability Zones, subnets, HSMs, ENIs), from ``describe_clusters`` output.

Each module imports matplotlib itself, so ``import labsupport`` stays free of it.
"""
