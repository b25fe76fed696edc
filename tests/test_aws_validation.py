"""The one model-driven input check (labsupport.aws.validation), worded as AWS words it."""

from __future__ import annotations

from labsupport.aws.validation import operation_model, validate


def test_list_size_and_each_member_are_checked_with_one_based_paths() -> None:
    op = operation_model("cloudhsmv2", "CreateCluster")
    found = validate(
        op,
        {
            "HsmType": "hsm2m.medium",
            "SubnetIds": ["subnet-1"] * 11,
            "TagList": [{"Key": "k" * 129, "Value": "v"}],
        },
    )
    assert any("at 'subnetIds' " in v and "length less than or equal to 10" in v for v in found)
    assert sum("at 'subnetIds." in v for v in found) == 11
    assert "at 'subnetIds.11' " in found[-2]
    assert "at 'tagList.1.key' " in found[-1] and "less than or equal to 128" in found[-1]


def test_map_keys_and_values_are_checked() -> None:
    op = operation_model("cloudhsmv2", "DescribeClusters")
    found = validate(op, {"Filters": {"bad key!": ["x"], "states": ["ok"]}})
    assert found == [
        "Value 'bad key!' at 'filters.key' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
    ]
    assert validate(op, {"Filters": {"states": ["ACTIVE"]}, "MaxResults": 5}) == []


def test_values_of_the_wrong_type_are_left_to_botocore() -> None:
    op = operation_model("cloudhsmv2", "CreateCluster")
    assert (
        validate(op, {"HsmType": 5, "SubnetIds": "subnet-12345678", "TagList": {"Key": "k"}}) == []
    )
