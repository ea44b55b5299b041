"""Code shared by the research workloads (bone-density, ct-segmentation) and their tests.

The workloads find this package as the `common` directory beside their own (workloads/common), so an image
that carries a workload must carry workloads/common next to it (see workloads/README.md).
"""
