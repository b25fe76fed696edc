"""The simulated CloudHSMv2 API, answered in-process for a real boto3 client.

``aws.client("cloudhsmv2")`` sends each call here (see :mod:`labsupport.aws`). Every
operation validates its input the way the service does (botocore itself only checks
required fields and types), changes the workspace's control-plane state and answers in
the wire format botocore parses — so modeled errors arrive as
``cloudhsm.exceptions.CloudHsmInvalidRequestException`` and friends, and paginators work.

Operations: CreateCluster, DescribeClusters, InitializeCluster, ModifyCluster,
DeleteCluster, CreateHsm, DeleteHsm, DescribeBackups, DeleteBackup, RestoreBackup,
CopyBackupToRegion, ModifyBackupAttributes, TagResource, UntagResource, ListTags,
GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy.

AWS does not publish its error message texts; these name the operation's resource, its
state and what to do next, and keep AWS's exception types.
"""

from __future__ import annotations

import contextlib
import enum
import json
import warnings
from typing import Any

from labsupport.aws.inprocess import AwsServiceError, JsonService
from labsupport.aws.paging import InvalidPageToken, paginate
from labsupport.aws.validation import known_regions
from labsupport.controlplane import backups, drills, hardware, ids, pki, retention
from labsupport.controlplane.clock import Step
from labsupport.controlplane.cluster import (
    ControlPlane,
    owner_from,
    record_backup,
    record_owner,
    schedule,
)
from labsupport.controlplane.reconcile import reconcile
from labsupport.controlplane.states import (
    BackupState,
    ClusterMode,
    ClusterState,
    HsmState,
    HsmType,
)
from labsupport.controlplane.vpc import default_vpc
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

INVALID = "CloudHsmInvalidRequestException"
NOT_FOUND = "CloudHsmResourceNotFoundException"
TAG_ERROR = "CloudHsmTagException"
LIMIT = "CloudHsmResourceLimitExceededException"

#: AWS quotas that matter in a lab.
MAX_HSMS_PER_CLUSTER = 28
MAX_TAGS = 50
DEFAULT_RETENTION_DAYS = "90"
CLUSTER_FILTERS = {"clusterIds", "vpcIds", "states"}
BACKUP_FILTERS = {"backupIds", "sourceBackupIds", "clusterIds", "states", "neverExpires"}
TAG_PUNCTUATION = set("_.:/=+-@ ")
_INITIALIZED = (ClusterState.INITIALIZED, ClusterState.ACTIVE, ClusterState.DEGRADED)


#: Why the lab warns about new ``hsm1.medium`` clusters (dated: AWS's FIPS compliance page).
HSM1_FIPS_NOTE = (
    "hsm1.medium is validated under FIPS 140-2 (certificate #4218), which AWS's FIPS page dates "
    "to move to the CMVP historical list on 2026-01-04; for a new cluster choose hsm2m.medium "
    "(FIPS 140-3 Level 3, certificate #4703)."
)


class Hsm1MediumWarning(UserWarning):
    """A cluster of the older hsm1.medium type was created (see :data:`HSM1_FIPS_NOTE`)."""


def invalid(message: str) -> AwsServiceError:
    """A ``CloudHsmInvalidRequestException`` with ``message``."""
    return AwsServiceError(INVALID, message)


def not_found(message: str) -> AwsServiceError:
    """A ``CloudHsmResourceNotFoundException`` with ``message``."""
    return AwsServiceError(NOT_FOUND, message)


# --- response shapes ------------------------------------------------------------------------


def hsm_to_api(hsm: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    """The ``Hsm`` structure of the API."""
    return {
        "AvailabilityZone": hsm["az"],
        "ClusterId": cluster_id,
        "SubnetId": hsm["subnet"],
        "EniId": hsm["eni_id"],
        "EniIp": hsm["eni_ip"],
        "HsmId": hsm["id"],
        "HsmType": hsm["hsm_type"],
        "State": hsm["state"],
        "StateMessage": hsm.get("state_message", ""),
    }


def certificates_to_api(cluster: dict[str, Any]) -> dict[str, str]:
    """``Certificates`` as AWS shows them: CSR and HSM chain while UNINITIALIZED (and the
    HSM that made the CSR is ACTIVE), the cluster certificate once initialization began."""
    pki_rec = cluster.get("pki", {})
    state = cluster["state"]
    out: dict[str, str] = {}
    if state == ClusterState.UNINITIALIZED and pki_rec.get("csr"):
        holder = cluster["hsms"].get(pki_rec.get("csr_hsm", ""))
        if holder and holder["state"] == HsmState.ACTIVE:
            out["ClusterCsr"] = pki_rec["csr"]
            out["HsmCertificate"] = pki_rec["hsm_cert"]
            out["AwsHardwareCertificate"] = pki_rec["aws_hw_cert"]
            out["ManufacturerHardwareCertificate"] = pki_rec["mfr_hw_cert"]
    elif pki_rec.get("cluster_cert"):
        out["ClusterCertificate"] = pki_rec["cluster_cert"]
    return out


def cluster_to_api(cluster: dict[str, Any]) -> dict[str, Any]:
    """The ``Cluster`` structure of the API."""
    hsms = sorted(cluster["hsms"].values(), key=lambda h: h["created"])
    out: dict[str, Any] = {
        "BackupPolicy": "DEFAULT",
        "BackupRetentionPolicy": dict(cluster["retention"]),
        "ClusterId": cluster["id"],
        "CreateTimestamp": cluster["created"],
        "Hsms": [hsm_to_api(h, cluster["id"]) for h in hsms],
        "HsmType": cluster["hsm_type"],
        "SecurityGroup": cluster["security_group"],
        "State": cluster["state"],
        "StateMessage": cluster.get("state_message", ""),
        "SubnetMapping": dict(cluster["subnets"]),
        "VpcId": cluster["vpc_id"],
        "NetworkType": "IPV4",
        "Certificates": certificates_to_api(cluster),
        "TagList": [dict(t) for t in cluster.get("tags", [])],
        "Mode": cluster["mode"],
    }
    if cluster.get("source_backup"):
        out["SourceBackupId"] = cluster["source_backup"]
    if cluster.get("rollback_expiration"):
        out["HsmTypeRollbackExpiration"] = cluster["rollback_expiration"]
    return out


def backup_to_api(backup: dict[str, Any]) -> dict[str, Any]:
    """The ``Backup`` structure of the API."""
    out: dict[str, Any] = {
        "BackupId": backup["id"],
        "BackupArn": ids.arn(backup["region"], "backup", backup["id"]),
        "BackupState": backup["state"],
        "ClusterId": backup["cluster_id"],
        "CreateTimestamp": backup["created"],
        "NeverExpires": backup.get("never_expires", False),
        "TagList": [dict(t) for t in backup.get("tags", [])],
        "HsmType": backup["hsm_type"],
        "Mode": backup["mode"],
    }
    for key, api in (
        ("copied", "CopyTimestamp"),
        ("source_region", "SourceRegion"),
        ("source_backup", "SourceBackup"),
        ("source_cluster", "SourceCluster"),
        ("deleted_at", "DeleteTimestamp"),
    ):
        if backup.get(key) is not None:
            out[api] = backup[key]
    return out


# --- input checks --------------------------------------------------------------------------


def _paginate(
    operation: str, items: list[Any], params: dict[str, Any], limit: int, key: str
) -> dict[str, Any]:
    """One page of ``items`` under ``key`` (MaxResults bounds come from the model)."""
    try:
        page = paginate(operation, items, params.get("NextToken"), params.get("MaxResults"), limit)
    except InvalidPageToken as exc:
        raise invalid(str(exc)) from None
    out: dict[str, Any] = {key: page.items}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def _filters(
    params: dict[str, Any], allowed: set[str], states: type[enum.Enum]
) -> dict[str, list[str]]:
    """The ``Filters`` map, with the values AWS documents checked (not silently ignored)."""
    filters = params.get("Filters") or {}
    for name, values in filters.items():
        if name not in allowed:
            raise invalid(f"Invalid filter {name!r}. Valid filters: {', '.join(sorted(allowed))}.")
        if name == "states":
            valid = [s.value for s in states]
            bad = [v for v in values if v not in valid]
            if bad:
                raise invalid(
                    f"Invalid value {bad[0]!r} for filter 'states'. Valid states: "
                    f"{', '.join(valid)}."
                )
        if name == "neverExpires":
            bad = [v for v in values if v.lower() not in ("true", "false")]
            if bad or len(values) != 1:
                raise invalid(
                    "The neverExpires filter takes one value, 'True' or 'False'"
                    + (f", not {bad[0]!r}." if bad else ".")
                )
    return filters


def _check_tags(tags: list[dict[str, str]]) -> None:
    if len(tags) > MAX_TAGS:
        raise AwsServiceError(TAG_ERROR, f"A resource can have at most {MAX_TAGS} tags.")
    for tag in tags:
        key, value = tag["Key"], tag.get("Value", "")
        if key.lower().startswith("aws:"):
            raise AwsServiceError(
                TAG_ERROR, f"Tag key {key!r} is not allowed: the prefix 'aws:' is reserved for AWS."
            )
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise AwsServiceError(
                TAG_ERROR, "Tag keys must have 1-128 characters and values at most 256."
            )
        for text in (key, value):
            if any(not (c.isalnum() or c in TAG_PUNCTUATION) for c in text):
                raise AwsServiceError(
                    TAG_ERROR,
                    f"Tag {key!r} contains characters that are not allowed. Use letters, "
                    "digits, spaces and _ . : / = + - @",
                )


def _retention(policy: dict[str, Any] | None) -> dict[str, str]:
    if policy is None:
        return {"Type": "DAYS", "Value": DEFAULT_RETENTION_DAYS}
    if policy.get("Type", "DAYS") != "DAYS":
        raise invalid(f"Invalid BackupRetentionPolicy Type {policy.get('Type')!r}: use DAYS.")
    value = str(policy.get("Value", DEFAULT_RETENTION_DAYS))
    if not (value.isascii() and value.isdigit()) or not 7 <= int(value) <= 379:
        raise invalid(
            f"Invalid BackupRetentionPolicy Value {value!r}: keep backups between 7 and 379 days."
        )
    return {"Type": "DAYS", "Value": str(int(value))}


def _hsm_type(value: Any) -> HsmType:
    try:
        return HsmType(value)
    except ValueError:
        raise invalid(
            f"Invalid HsmType {value!r}. Valid HSM types: {', '.join(t.value for t in HsmType)}."
        ) from None


# --- the service ------------------------------------------------------------------------


class CloudHsmV2Service(JsonService):
    """The CloudHSMv2 operations of one workspace and region."""

    service_name = "cloudhsmv2"
    # CloudHSMv2 models no UnsupportedOperationException: an operation the lab does not
    # simulate is an invalid request; anything else that fails is an internal failure.
    unsupported_error = INVALID
    internal_error = "CloudHsmInternalFailureException"

    def __init__(self, workspace: Workspace, region: str) -> None:
        super().__init__(workspace, region)
        self.plane = ControlPlane(workspace)
        # Finish or roll back whatever a killed process left half-done (cheap when
        # nothing is: no lock, no PKCS#11). A damaged workspace is reported by the first
        # call instead, as a modeled error.
        with contextlib.suppress(LabError):
            reconcile(workspace)

    # -- helpers -----------------------------------------------------------------------

    def _now(self) -> float:
        return self.plane.clock.now()

    def _cluster(self, data: dict[str, Any], cluster_id: Any) -> dict[str, Any]:
        rec = data["clusters"].get(cluster_id) if isinstance(cluster_id, str) else None
        if rec is None or rec["region"] != self.region:
            raise not_found(f"Cluster {cluster_id} not found in region {self.region}.")
        return rec

    def _backup(self, data: dict[str, Any], backup_id: Any) -> dict[str, Any]:
        match = ids.BACKUP_ARN.match(backup_id) if isinstance(backup_id, str) else None
        if not match:
            raise invalid(f"Invalid backup id {backup_id!r}: it must look like backup-ro5c4er4aac.")
        rec = data["backups"].get(match.group("id"))
        if rec is None or rec["region"] != self.region:
            raise not_found(f"Backup {match.group('id')} not found in region {self.region}.")
        return rec

    def _resource(self, data: dict[str, Any], resource_id: Any) -> dict[str, Any]:
        if str(resource_id).startswith("cluster-"):
            return self._cluster(data, resource_id)
        return self._backup(data, resource_id)

    # -- clusters ------------------------------------------------------------------------

    def CreateCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Create a cluster in the given subnets (one per AZ, all in one VPC)."""
        hsm_type = _hsm_type(params["HsmType"])
        try:
            mode = ClusterMode(params.get("Mode") or "FIPS")
        except ValueError:
            raise invalid(
                f"Invalid Mode {params['Mode']!r}. Valid modes: FIPS, NON_FIPS."
            ) from None
        if hsm_type is HsmType.HSM1_MEDIUM and mode is ClusterMode.NON_FIPS:
            raise invalid(
                "hsm1.medium supports FIPS mode only. Use HsmType hsm2m.medium for a "
                "NON_FIPS cluster."
            )
        if hsm_type is HsmType.HSM1_MEDIUM:
            # Real AWS accepts it silently; the lab says what a learner should know first.
            warnings.warn(HSM1_FIPS_NOTE, Hsm1MediumWarning, stacklevel=2)
        if params.get("NetworkType", "IPV4") not in ("IPV4", "DUALSTACK"):
            raise invalid(f"Invalid NetworkType {params['NetworkType']!r}: use IPV4 or DUALSTACK.")
        if params.get("NetworkType") == "DUALSTACK":
            raise invalid(
                "NetworkType DUALSTACK needs subnets with IPv6 ranges; the default "
                "VPC has none. Use IPV4."
            )
        retention = _retention(params.get("BackupRetentionPolicy"))
        tags = params.get("TagList") or []
        _check_tags(tags)

        vpc = default_vpc(self.workspace, self.region)
        subnet_ids: list[str] = params["SubnetIds"]
        mapping: dict[str, str] = {}
        for subnet_id in subnet_ids:
            subnet = vpc.subnet(subnet_id)
            if subnet is None:
                raise invalid(
                    f"Subnet {subnet_id} does not exist in region {self.region}. "
                    "Find your subnets with ec2.describe_subnets()."
                )
            if subnet.availability_zone in mapping:
                raise invalid(
                    "You can specify only one subnet per Availability Zone: "
                    f"{mapping[subnet.availability_zone]} and {subnet_id} are both in "
                    f"{subnet.availability_zone}."
                )
            mapping[subnet.availability_zone] = subnet_id

        now = self._now()
        with self.plane.change() as data:
            source = None
            if params.get("SourceBackupId"):
                source = self._backup(data, params["SourceBackupId"])
                if source["state"] != BackupState.READY:
                    raise invalid(
                        f"Backup {source['id']} is {source['state']}; only a READY backup can "
                        "be restored into a new cluster."
                    )
                if source["mode"] != mode.value:
                    raise invalid(
                        f"Backup {source['id']} was taken from a {source['mode']} cluster; it "
                        f"can only be restored into a {source['mode']} cluster, not {mode.value}."
                    )
            cluster_id = ids.cluster_id()
            rec: dict[str, Any] = {
                "id": cluster_id,
                "region": self.region,
                "owner": owner_from(tags),
                "hsm_type": hsm_type.value,
                "mode": mode.value,
                "state": ClusterState.CREATE_IN_PROGRESS.value,
                "state_message": "The cluster is being created.",
                "created": now,
                "vpc_id": vpc.vpc_id,
                "security_group": ids.ec2_id("sg"),
                "subnets": mapping,
                "retention": retention,
                "tags": [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags],
                "hsms": {},
                "pki": {},
            }
            if source is None:
                schedule(
                    rec,
                    now,
                    (
                        ClusterState.UNINITIALIZED.value,
                        Step.CLUSTER_CREATE,
                        "The cluster is ready. Create an HSM, then sign the cluster CSR and "
                        "initialize the cluster.",
                    ),
                )
            else:
                rec["source_backup"] = source["id"]
                rec["pki"] = dict(source.get("pki", {}))
                try:
                    backups.restore_cluster_document(
                        self.workspace, source["id"], cluster_id, rec["owner"]
                    )
                except backups.BackupUnreadable as exc:
                    raise invalid(f"{exc.problem} {exc.fix}") from None
                schedule(
                    rec,
                    now,
                    (
                        ClusterState.INITIALIZED.value,
                        Step.CLUSTER_CREATE,
                        f"The cluster was restored from {source['id']}. Create an HSM: the "
                        "cluster becomes ACTIVE when its first HSM is.",
                    ),
                )
            data["clusters"][cluster_id] = rec
            return {"Cluster": cluster_to_api(rec)}

    def DescribeClusters(self, params: dict[str, Any]) -> dict[str, Any]:
        """List the clusters of this region (filters: clusterIds, vpcIds, states)."""
        filters = _filters(params, CLUSTER_FILTERS, ClusterState)
        clusters = [c for c in self.plane.view()["clusters"].values() if c["region"] == self.region]
        if "clusterIds" in filters:
            clusters = [c for c in clusters if c["id"] in filters["clusterIds"]]
        if "vpcIds" in filters:
            clusters = [c for c in clusters if c["vpc_id"] in filters["vpcIds"]]
        if "states" in filters:
            clusters = [c for c in clusters if c["state"] in filters["states"]]
        clusters.sort(key=lambda c: c["created"])
        return _paginate(
            "DescribeClusters", [cluster_to_api(c) for c in clusters], params, 25, "Clusters"
        )

    def InitializeCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Claim the cluster with the CSR signed by your CA and that CA's root certificate."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            state = ClusterState(rec["state"])
            if state is ClusterState.CREATE_IN_PROGRESS:
                raise invalid(
                    f"Cluster {cid} is still being created (state CREATE_IN_PROGRESS). Wait "
                    "until it is UNINITIALIZED, create an HSM, then initialize the cluster."
                )
            if state in (
                ClusterState.INITIALIZE_IN_PROGRESS,
                ClusterState.INITIALIZED,
                ClusterState.ACTIVE,
                ClusterState.DEGRADED,
            ):
                raise invalid(f"Cluster {cid} is already initialized (state {state.value}).")
            if state is not ClusterState.UNINITIALIZED:
                raise invalid(f"Cluster {cid} cannot be initialized in state {state.value}.")
            holder = rec["hsms"].get(rec["pki"].get("csr_hsm", ""))
            if holder is None:
                raise invalid(
                    f"Cluster {cid} has no HSM yet, so there is no cluster CSR to sign. Create "
                    "an HSM with CreateHsm, wait until it is ACTIVE, then sign "
                    "Certificates.ClusterCsr from DescribeClusters."
                )
            if holder["state"] != HsmState.ACTIVE:
                raise invalid(
                    f"HSM {holder['id']} of cluster {cid} is {holder['state']}. Wait until it is "
                    "ACTIVE, then sign Certificates.ClusterCsr from DescribeClusters."
                )
            try:
                pki.verify_cluster_certificate(
                    rec["pki"]["csr"], params["SignedCert"], params["TrustAnchor"], now
                )
            except pki.CertificateRejected as exc:
                raise invalid(f"InitializeCluster for {cid} rejected: {exc}") from None
            rec["pki"]["cluster_cert"] = params["SignedCert"].strip() + "\n"
            rec["pki"]["trust_anchor"] = params["TrustAnchor"].strip() + "\n"
            rec["state"] = ClusterState.INITIALIZE_IN_PROGRESS.value
            rec["state_message"] = "The cluster is being initialized."
            record_backup(data, rec, now, self.workspace)  # AWS backs up on initialize
            schedule(
                rec,
                now,
                (
                    ClusterState.INITIALIZED.value,
                    Step.CLUSTER_INITIALIZE,
                    "The cluster is initialized. Activate it with CloudHSM CLI "
                    "(cluster activate) to set the admin password.",
                ),
            )
            return {"State": rec["state"], "StateMessage": rec["state_message"]}

    def ModifyCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Change the backup retention policy, or migrate hsm1.medium → hsm2m.medium."""
        if "HsmType" not in params and "BackupRetentionPolicy" not in params:
            raise invalid("Specify BackupRetentionPolicy or HsmType to modify the cluster.")
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            if rec["state"] in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {rec['id']} is {rec['state']}; it cannot be modified.")
            if "BackupRetentionPolicy" in params:
                rec["retention"] = _retention(params["BackupRetentionPolicy"])
            if "HsmType" in params:
                target = _hsm_type(params["HsmType"])
                if target.value != rec["hsm_type"]:
                    if not (
                        rec["hsm_type"] == HsmType.HSM1_MEDIUM and target is HsmType.HSM2M_MEDIUM
                    ):
                        raise invalid(
                            f"Cluster {rec['id']} cannot change from {rec['hsm_type']} to "
                            f"{target.value}: only hsm1.medium → hsm2m.medium is supported."
                        )
                    if rec["state"] != ClusterState.ACTIVE:
                        raise invalid(
                            f"Cluster {rec['id']} is {rec['state']}; migrate the HSM type of an "
                            "ACTIVE cluster only."
                        )
                    rec["state"] = ClusterState.MODIFY_IN_PROGRESS.value
                    rec["state_message"] = f"Migrating the cluster to {target.value}."
                    rec["hsm_type"] = target.value
                    for hsm in rec["hsms"].values():
                        hsm["hsm_type"] = target.value
                    rec["rollback_expiration"] = now + 24 * 3600
                    schedule(
                        rec,
                        now,
                        (
                            ClusterState.ACTIVE.value,
                            Step.CLUSTER_MODIFY,
                            f"The cluster now runs {target.value} HSMs.",
                        ),
                    )
            return {"Cluster": cluster_to_api(rec)}

    def DeleteCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete a cluster that has no HSMs left."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            if rec["state"] in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {cid} is already {rec['state']}.")
            if rec["state"] == ClusterState.CREATE_IN_PROGRESS:
                raise invalid(
                    f"Cluster {cid} is still being created (state CREATE_IN_PROGRESS). Wait "
                    "until creation finishes, then delete it."
                )
            if rec["hsms"]:
                listed = ", ".join(sorted(rec["hsms"]))
                raise invalid(
                    f"Cluster {cid} still contains {len(rec['hsms'])} HSM(s) ({listed}). "
                    "Delete every HSM with DeleteHsm before deleting the cluster."
                )
            rec["state"] = ClusterState.DELETE_IN_PROGRESS.value
            rec["state_message"] = "The cluster is being deleted."
            schedule(
                rec,
                now,
                (ClusterState.DELETED.value, Step.CLUSTER_DELETE, "The cluster was deleted."),
            )
            return {"Cluster": cluster_to_api(rec)}

    # -- HSMs ----------------------------------------------------------------------------

    def CreateHsm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add an HSM to the cluster in one of its Availability Zones."""
        az = params["AvailabilityZone"]
        now = self._now()
        vpc = default_vpc(self.workspace, self.region)
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            if az not in rec["subnets"]:
                raise invalid(
                    f"Cluster {cid} has no subnet in Availability Zone {az}. Its subnets are in "
                    f"{', '.join(sorted(rec['subnets']))}; create the HSM in one of those."
                )
            state = ClusterState(rec["state"])
            if state in (
                ClusterState.CREATE_IN_PROGRESS,
                ClusterState.INITIALIZE_IN_PROGRESS,
                ClusterState.MODIFY_IN_PROGRESS,
                ClusterState.UPDATE_IN_PROGRESS,
            ):
                raise invalid(
                    f"Cluster {cid} is {state.value}. Wait until the operation finishes, then "
                    "create the HSM."
                )
            if state in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {cid} is {state.value}; you cannot add HSMs to it.")
            if state is ClusterState.UNINITIALIZED and rec["hsms"]:
                raise invalid(
                    f"Cluster {cid} is UNINITIALIZED and already has an HSM "
                    f"({', '.join(sorted(rec['hsms']))}). Initialize the cluster before you "
                    "add more HSMs."
                )
            if len(rec["hsms"]) >= MAX_HSMS_PER_CLUSTER:
                raise invalid(
                    f"Cluster {cid} already has the maximum of {MAX_HSMS_PER_CLUSTER} HSMs."
                )
            subnet = vpc.subnet(rec["subnets"][az])
            assert subnet is not None
            used = {h["eni_ip"] for c in data["clusters"].values() for h in c["hsms"].values()}
            ip = params.get("IpAddress")
            if ip is not None:
                if not all(0 <= int(part) <= 255 for part in ip.split(".")):
                    raise invalid(f"IpAddress {ip} is not a valid IPv4 address.")
                if not subnet.contains(ip):
                    raise invalid(
                        f"IP address {ip} is not available in subnet {subnet.subnet_id} "
                        f"({subnet.cidr_block}, {az}); AWS reserves the first four addresses "
                        "and the last one."
                    )
                if ip in used:
                    raise invalid(
                        f"IP address {ip} is already in use in subnet {subnet.subnet_id}."
                    )
            else:
                ip = subnet.allocate_ip(used)

            hsm_id = ids.hsm_id()
            first = state is ClusterState.UNINITIALIZED
            hsm = {
                "id": hsm_id,
                "az": az,
                "subnet": subnet.subnet_id,
                "eni_id": ids.ec2_id("eni"),
                "eni_ip": ip,
                "hsm_type": rec["hsm_type"],
                "state": HsmState.CREATE_IN_PROGRESS.value,
                "state_message": "The HSM is being created.",
                "created": now,
                "token": hsm_id,
                "intent": "create",
                "next": [],
            }
            restoring = bool(rec.get("source_backup")) and not rec["hsms"]
            rec["hsms"][hsm_id] = hsm
            self.plane.commit(data)  # the intent is durable before SoftHSM changes
            try:
                identity = hardware.provision_hsm(
                    self.workspace,
                    hsm_id,
                    owner=record_owner(rec),
                    mode=rec["mode"],
                    now=now,
                    with_cluster_key=first,
                )
                if restoring:
                    self._restore_first_hsm(data, rec, hsm, self._now())
            except BaseException:
                # Roll back at once (a KeyboardInterrupt too); a SIGKILL is rolled back
                # by the next reconcile instead.
                with contextlib.suppress(Exception):
                    hardware.decommission_hsm(self.workspace, hsm_id)
                del rec["hsms"][hsm_id]
                self.plane.commit(data)
                raise
            del hsm["intent"]
            hsm.update(
                serial=identity.serial,
                holds_cluster_key=first,
                aws_hw_cert=identity.aws_hardware_certificate,
                mfr_hw_cert=identity.manufacturer_hardware_certificate,
            )
            # The lab-clock wait starts when the token exists (provisioning takes real time).
            schedule(hsm, self._now(), (HsmState.ACTIVE.value, Step.HSM_CREATE, "HSM created."))
            if first:
                rec["pki"] = {
                    "csr": identity.cluster_csr,
                    "csr_hsm": hsm_id,
                    "hsm_cert": identity.hsm_certificate,
                    "aws_hw_cert": identity.aws_hardware_certificate,
                    "mfr_hw_cert": identity.manufacturer_hardware_certificate,
                }
            if state in _INITIALIZED and not restoring:
                record_backup(data, rec, now, self.workspace)
            return {"Hsm": hsm_to_api(hsm, cid)}

    def _restore_first_hsm(
        self, data: dict[str, Any], rec: dict[str, Any], hsm: dict[str, Any], now: float
    ) -> None:
        """Load the source backup into the first HSM of a restored cluster; the cluster
        becomes ACTIVE when that HSM does."""
        source = data["backups"].get(rec["source_backup"])
        try:
            count = backups.restore_into_token(self.workspace, rec["source_backup"], hsm["token"])
        except backups.BackupUnreadable as exc:
            hardware.decommission_hsm(self.workspace, hsm["token"])
            raise invalid(f"{exc.problem} {exc.fix}") from None
        hsm["restored_objects"] = count
        if source is not None:
            hsm["restored_from"] = source["id"]
        if rec["state"] == ClusterState.INITIALIZED:
            schedule(
                rec,
                now,
                (ClusterState.ACTIVE.value, Step.HSM_CREATE, "Cluster is active."),
            )

    def DeleteHsm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete one HSM, named by HsmId, EniId or EniIp."""
        keys = [k for k in ("HsmId", "EniId", "EniIp") if params.get(k)]
        if not keys:
            raise invalid("Specify the HSM to delete with HsmId, EniId or EniIp.")
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            field_of = {"HsmId": "id", "EniId": "eni_id", "EniIp": "eni_ip"}
            matches = [
                h for h in rec["hsms"].values() if all(h[field_of[k]] == params[k] for k in keys)
            ]
            if not matches:
                what = " / ".join(f"{k} {params[k]}" for k in keys)
                raise not_found(f"HSM with {what} not found in cluster {rec['id']}.")
            hsm = matches[0]
            if hsm["state"] == HsmState.DELETE_IN_PROGRESS:
                raise invalid(f"HSM {hsm['id']} is already being deleted.")
            if rec["state"] in _INITIALIZED:  # AWS backs up when an HSM is removed
                record_backup(data, rec, now, self.workspace, last_resort=hsm["id"])
            hsm["state"] = HsmState.DELETE_IN_PROGRESS.value
            hsm["state_message"] = "The HSM is being deleted."
            hsm["intent"] = "delete"
            hsm["next"] = []
            self.plane.commit(data)  # the intent is durable before the token goes
            hardware.decommission_hsm(self.workspace, hsm["token"])
            del hsm["intent"]
            drills.recover_if_healthy(rec, hsm["id"])  # a DEGRADED cluster's bad HSM left
            # The lab-clock wait starts once the token is gone.
            schedule(hsm, self._now(), (HsmState.DELETED.value, Step.HSM_DELETE, "HSM deleted."))
            if (
                rec["pki"].get("csr_hsm") == hsm["id"]
                and rec["state"] == ClusterState.UNINITIALIZED
            ):
                # Its CSR died with it; the next HSM will make a new one.
                rec["pki"] = {}
            return {"HsmId": hsm["id"]}

    # -- backups -------------------------------------------------------------------------

    def DescribeBackups(self, params: dict[str, Any]) -> dict[str, Any]:
        """List backups (filters: backupIds, sourceBackupIds, clusterIds, states, neverExpires)."""
        filters = _filters(params, BACKUP_FILTERS, BackupState)
        if retention.due(self.plane.view(), self.plane.clock.reading()):
            with self.plane.change() as data:
                retention.housekeeping(self.workspace, data, self.plane.clock.reading())
        if params.get("Shared"):
            return _paginate(
                "DescribeBackups", [], params, 50, "Backups"
            )  # nobody shares backups with the lab
        backups = [b for b in self.plane.view()["backups"].values() if b["region"] == self.region]
        for name, field_name in (
            ("backupIds", "id"),
            ("sourceBackupIds", "source_backup"),
            ("clusterIds", "cluster_id"),
            ("states", "state"),
        ):
            if name in filters:
                backups = [b for b in backups if b.get(field_name) in filters[name]]
        if "neverExpires" in filters:
            wanted = {v.lower() == "true" for v in filters["neverExpires"]}
            backups = [b for b in backups if bool(b.get("never_expires")) in wanted]
        backups.sort(key=lambda b: b["created"], reverse=not params.get("SortAscending", False))
        return _paginate(
            "DescribeBackups", [backup_to_api(b) for b in backups], params, 50, "Backups"
        )

    def DeleteBackup(self, params: dict[str, Any]) -> dict[str, Any]:
        """Mark a READY backup for deletion (restorable for 7 days)."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            if rec["state"] != BackupState.READY:
                raise invalid(
                    f"Backup {rec['id']} is {rec['state']}; only a READY backup can be deleted."
                )
            rec["state"] = BackupState.PENDING_DELETION.value
            rec["deleted_at"] = now
            schedule(rec, now, (BackupState.DELETED.value, Step.BACKUP_EXPIRE, ""))
            return {"Backup": backup_to_api(rec)}

    def RestoreBackup(self, params: dict[str, Any]) -> dict[str, Any]:
        """Undo DeleteBackup for a backup in PENDING_DELETION."""
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            if rec["state"] != BackupState.PENDING_DELETION:
                raise invalid(
                    f"Backup {rec['id']} is {rec['state']}; only a backup in "
                    "PENDING_DELETION can be restored."
                )
            rec["state"] = BackupState.READY.value
            rec["deleted_at"] = None
            rec["next"] = []
            return {"Backup": backup_to_api(rec)}

    def ModifyBackupAttributes(self, params: dict[str, Any]) -> dict[str, Any]:
        """Exempt a backup from the retention policy (NeverExpires) or not."""
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            rec["never_expires"] = bool(params["NeverExpires"])
            return {"Backup": backup_to_api(rec)}

    def CopyBackupToRegion(self, params: dict[str, Any]) -> dict[str, Any]:
        """Copy a READY backup to another region (to create a cluster there)."""
        dest = params["DestinationRegion"]
        if dest not in known_regions("cloudhsmv2"):
            raise invalid(
                f"DestinationRegion {dest!r} is not a region where CloudHSM exists; e.g. us-west-2."
            )
        if dest == self.region:
            raise invalid(f"The backup is already in {dest}; choose a different DestinationRegion.")
        tags = params.get("TagList") or []
        _check_tags(tags)
        now = self._now()
        with self.plane.change() as data:
            src = self._backup(data, params["BackupId"])
            if src["state"] != BackupState.READY:
                raise invalid(
                    f"Backup {src['id']} is {src['state']}; only a READY backup can be copied."
                )
            copy = {
                **{k: v for k, v in src.items() if k not in ("next",)},
                "id": ids.backup_id(),
                "region": dest,
                "state": BackupState.CREATE_IN_PROGRESS.value,
                "created": now,
                "copied": now,
                "source_region": self.region,
                "source_backup": src["id"],
                "source_cluster": src["cluster_id"],
                "never_expires": False,
                "deleted_at": None,
                "tags": [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags],
            }
            if src.get("contents"):
                try:
                    backups.copy_payload(self.workspace, src["id"], copy["id"])
                except backups.BackupUnreadable as exc:
                    raise invalid(f"{exc.problem} {exc.fix}") from None
            schedule(copy, now, (BackupState.READY.value, Step.BACKUP_CREATE, ""))
            data["backups"][copy["id"]] = copy
            return {
                "DestinationBackup": {
                    "CreateTimestamp": src["created"],
                    "SourceRegion": self.region,
                    "SourceBackup": src["id"],
                    "SourceCluster": src["cluster_id"],
                }
            }

    # -- tags ----------------------------------------------------------------------------

    def TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add or overwrite tags on a cluster or backup."""
        with self.plane.change() as data:
            rec = self._resource(data, params["ResourceId"])
            tags = {t["Key"]: t["Value"] for t in rec.get("tags", [])}
            for tag in params["TagList"]:
                tags[tag["Key"]] = tag.get("Value", "")
            merged = [{"Key": k, "Value": v} for k, v in tags.items()]
            _check_tags(params["TagList"])
            if len(merged) > MAX_TAGS:
                raise AwsServiceError(
                    LIMIT, f"{rec['id']} would have {len(merged)} tags; the limit is {MAX_TAGS}."
                )
            rec["tags"] = merged
            return {}

    def UntagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        """Remove tags (by key) from a cluster or backup."""
        with self.plane.change() as data:
            rec = self._resource(data, params["ResourceId"])
            drop = set(params["TagKeyList"])
            rec["tags"] = [t for t in rec.get("tags", []) if t["Key"] not in drop]
            return {}

    def ListTags(self, params: dict[str, Any]) -> dict[str, Any]:
        """The tags of a cluster or backup."""
        rec = self._resource(self.plane.view(), params["ResourceId"])
        return _paginate("ListTags", [dict(t) for t in rec.get("tags", [])], params, 100, "TagList")

    # -- resource policies (backups only, as on AWS) ---------------------------------------

    def _policy_target(self, data: dict[str, Any], arn: Any) -> dict[str, Any]:
        match = ids.RESOURCE_ARN.match(arn) if isinstance(arn, str) else None
        if not match:
            raise invalid(
                f"Invalid ResourceArn {arn!r}: use a backup ARN such as "
                f"{ids.arn(self.region, 'backup', 'backup-ro5c4er4aac')}."
            )
        if match.group("kind") != "backup":
            raise invalid("Resource policies can be attached to backups only.")
        if match.group("account") != ids.ACCOUNT_ID or match.group("region") != self.region:
            raise not_found(f"Backup {match.group('id')} not found in this account and region.")
        return self._backup(data, match.group("id"))

    def GetResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """The resource policy of a backup (absent if it has none)."""
        rec = self._policy_target(self.plane.view(), params.get("ResourceArn"))
        return {"Policy": rec["policy"]} if rec.get("policy") else {}

    def PutResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """Attach a resource policy (JSON) to a backup, e.g. to share it."""
        policy = params.get("Policy") or ""
        try:
            json.loads(policy)
        except ValueError:
            raise invalid("Policy is not valid JSON.") from None
        with self.plane.change() as data:
            rec = self._policy_target(data, params.get("ResourceArn"))
            rec["policy"] = policy
            return {"ResourceArn": params["ResourceArn"], "Policy": policy}

    def DeleteResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """Remove the resource policy of a backup."""
        with self.plane.change() as data:
            rec = self._policy_target(data, params.get("ResourceArn"))
            policy = rec.pop("policy", None)
            out: dict[str, Any] = {"ResourceArn": params["ResourceArn"]}
            if policy:
                out["Policy"] = policy
            return out
