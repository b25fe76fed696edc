"""Presentation: drawings and plots the lessons show, kept out of the domain layers.

* :mod:`~labsupport.plots.cluster` — ``draw_cluster``: a cluster as AWS describes it (VPC,
  Availability Zones, subnets, HSMs, ENIs), from ``describe_clusters`` output (lesson 02).
* :mod:`~labsupport.plots.costs` — ``plot_monthly_costs``: the KMS / CloudHSM cost
  cross-over (lesson 01).
* :mod:`~labsupport.plots.throughput` — ``plot_throughput``: ops/s measured live (lesson 04).

Each module imports matplotlib itself, so ``import labsupport`` stays free of it.
"""
