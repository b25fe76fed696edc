"""The tag operations on clusters and backups: TagResource, UntagResource, ListTags."""

from __future__ import annotations

from typing import Any

from labsupport.aws.inprocess import AwsServiceError
from labsupport.controlplane.api.base import CloudHsmV2Base
from labsupport.controlplane.api.inputs import LIMIT, MAX_TAGS, check_tags, page_of
from labsupport.controlplane.records import Tag


class TagOperations(CloudHsmV2Base):
    """TagResource, UntagResource and ListTags on clusters and backups."""

    def TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add or overwrite tags on a cluster or backup."""
        with self.plane.change() as data:
            rec = self._resource(data, params["ResourceId"])
            tags = {t["Key"]: t["Value"] for t in rec.get("tags", [])}
            for tag in params["TagList"]:
                tags[tag["Key"]] = tag.get("Value", "")
            merged: list[Tag] = [{"Key": k, "Value": v} for k, v in tags.items()]
            check_tags(params["TagList"])
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
        return page_of("ListTags", [dict(t) for t in rec.get("tags", [])], params, 100, "TagList")
