"""The simulated CloudHSMv2 API, one module per resource.

:class:`labsupport.controlplane.service.CloudHsmV2Service` composes them; open the module
named for the resource a call is about:

* :mod:`.clusters` — CreateCluster, DescribeClusters, InitializeCluster, ModifyCluster,
  DeleteCluster;
* :mod:`.hsms` — CreateHsm (ENI address, token, CSR, restore into the first HSM), DeleteHsm;
* :mod:`.backups` — DescribeBackups, DeleteBackup, RestoreBackup, ModifyBackupAttributes,
  CopyBackupToRegion, and the backup resource policies;
* :mod:`.tags` — TagResource, UntagResource, ListTags;
* :mod:`.base` — what every operation shares (the control plane, the clock, finding a
  cluster or backup by id); :mod:`.inputs` — modeled errors and the input checks botocore
  skips; :mod:`.shapes` — the response structures.
"""
