"""What a challenger must pass against the versions before it gets traffic: the same input schema
as the champion, segment rules that fit its input features, and (with --require-offline-win) a
stored offline verdict that beat this champion on this deployment."""

from __future__ import annotations

from typing import Any

from controlplane.deployments import check_compatible
from controlplane.store.models import ModelVersionRow
from core.errors import FailedPrecondition, InvalidInput
from core.vocabulary import SegmentSource, segment_number


def check_schema(champion: ModelVersionRow, challenger: ModelVersionRow) -> None:
    """Name the first difference between the two input schemas, then the shared rule."""
    a, b = champion.inputs, challenger.inputs
    ref_a, ref_b = f"{champion.model}:{champion.version}", f"{challenger.model}:{challenger.version}"
    if len(a) != len(b):
        raise InvalidInput(f"input schema mismatch: {ref_b} takes {len(b)} inputs, the champion {ref_a} takes {len(a)}")
    for x, y in zip(a, b, strict=True):
        if x["dtype"] != y["dtype"]:
            raise InvalidInput(
                f"input schema mismatch: {ref_b} input {y['name']!r} is {y['dtype']}, the champion "
                f"{ref_a} input {x['name']!r} is {x['dtype']}"
            )
        if list(x["shape"][1:]) != list(y["shape"][1:]):

            def show(shape: list[int]) -> str:
                return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"

            raise InvalidInput(
                f"input schema mismatch: {ref_b} input {y['name']!r} has shape {show(y['shape'])}, "
                f"the champion {ref_a} input {x['name']!r} has shape {show(x['shape'])}"
            )
    check_compatible(champion, challenger)


def check_segment_features(rules: list[dict[str, Any]], versions: list[ModelVersionRow]) -> None:
    """Segment rules against the input schema of each version: a `feature.NAME` rule must name
    an input of one column; a rule on a feature (prefixed, or unprefixed with the name of an input)
    must fit its type: a range needs a number, the values of a numeric feature must be numbers.
    An unprefixed name that is no input is a request attribute."""
    for rule in rules:
        written = rule["attribute"]
        source, name = SegmentSource.of_name(written)
        if source == SegmentSource.ATTRIBUTE:
            continue
        hint = "" if source == SegmentSource.FEATURE else f"; to test the request attribute, write attribute.{name}=..."
        for version in versions:
            ref = f"{version.model}:{version.version}"
            spec = next((i for i in version.inputs if i["name"] == name), None)
            if spec is None:
                if source == SegmentSource.FEATURE:
                    names = ", ".join(repr(i["name"]) for i in version.inputs[:20])
                    raise InvalidInput(
                        f"segment {written!r}: {ref} has no input feature {name!r} (its inputs: {names})"
                    )
                continue
            shape = list(spec["shape"])
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                shown = "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"
                raise InvalidInput(
                    f"segment {written!r}: input {name!r} of {ref} has shape {shown}; a segment tests a "
                    f"feature of one column{hint}"
                )
            text = spec["dtype"] == "string"
            if rule["has_range"] and text:
                raise InvalidInput(
                    f"segment {written!r}: feature {name!r} of {ref} holds text, and a range needs numbers; "
                    f"list the values instead ({name}=a,b){hint}"
                )
            if not rule["has_range"] and not text:
                bad = [v for v in rule["values"] if segment_number(v) is None]
                if bad:
                    raise InvalidInput(
                        f"segment {written!r}: feature {name!r} of {ref} is {spec['dtype']}, but the value "
                        f"{bad[0][:64]!r} is not a number{hint}"
                    )


def check_offline_win(champion: ModelVersionRow, challenger: ModelVersionRow, deployment: str) -> None:
    """With --require-offline-win: the challenger's stored offline verdict beat this champion here."""
    ref_c = f"{champion.model}:{champion.version}"
    ref_t = f"{challenger.model}:{challenger.version}"
    evaluate = f"`sluice evaluate {ref_t} --deployment {deployment} --data FILE`"
    verdict = challenger.offline_evaluation
    if not verdict:
        raise FailedPrecondition(f"{ref_t} has no offline evaluation and --require-offline-win is set; run {evaluate}")
    if verdict.get("deployment") != deployment or verdict.get("champion") != ref_c:
        raise FailedPrecondition(
            f"the offline evaluation of {ref_t} compared it with {verdict.get('champion')} on "
            f"{verdict.get('deployment')}, not with the current champion {ref_c}; run {evaluate}"
        )
    if not verdict.get("challenger_wins"):
        raise FailedPrecondition(
            f"{ref_t} did not win its offline evaluation against {ref_c} "
            f"({verdict.get('verdict', 'no verdict')}); --require-offline-win refuses it"
        )
