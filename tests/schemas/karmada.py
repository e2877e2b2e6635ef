"""Karmada's PropagationPolicy (policy.karmada.io/v1alpha1), the fields Straits writes, as
pydantic models written from Karmada's API reference (pkg/apis/policy/v1alpha1,
propagation_types.go). No Python library validates Karmada objects, so this structural check
(unknown fields rejected, types and enums checked, ClusterAffinity/ClusterAffinities mutually
exclusive) stands in for the CRD's OpenAPI schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceSelector(_Strict):
    apiVersion: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    namespace: str | None = None
    name: str | None = None


class ClusterAffinity(_Strict):
    clusterNames: list[str] | None = None
    exclude: list[str] | None = None


class ClusterAffinityTerm(ClusterAffinity):
    affinityName: str = Field(min_length=1, max_length=32)


class SpreadConstraint(_Strict):
    spreadByField: Literal["cluster", "region", "zone", "provider"] | None = None
    spreadByLabel: str | None = None
    maxGroups: int | None = Field(default=None, ge=0)
    minGroups: int | None = Field(default=None, ge=0)


class Placement(_Strict):
    clusterAffinity: ClusterAffinity | None = None
    clusterAffinities: list[ClusterAffinityTerm] | None = None
    spreadConstraints: list[SpreadConstraint] | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> Placement:
        if self.clusterAffinity is not None and self.clusterAffinities is not None:
            raise ValueError("clusterAffinity and clusterAffinities are mutually exclusive")
        names = [t.affinityName for t in self.clusterAffinities or ()]
        if len(names) != len(set(names)):
            raise ValueError("affinityName must be unique")
        return self


class Spec(_Strict):
    resourceSelectors: list[ResourceSelector] = Field(min_length=1)
    placement: Placement | None = None
    priority: int | None = None
    propagateDeps: bool | None = None


class Metadata(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class PropagationPolicy(_Strict):
    apiVersion: Literal["policy.karmada.io/v1alpha1"]
    kind: Literal["PropagationPolicy"]
    metadata: Metadata
    spec: Spec
