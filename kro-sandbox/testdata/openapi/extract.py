#!/usr/bin/env python3
"""Regenerates `builtin.json`: the compact OpenAPI extract the patch engine embeds.

Usage: extract.py DIR_WITH_OPENAPI_V3_DOCS > builtin.json

DIR holds the kube-apiserver's `/openapi/v3/<group-version>` documents saved as
`api_v1.json`, `apis_apps_v1.json`, ... Every kind of those documents is kept
(the sandbox serves SERVED at least) with the definitions reachable from
them, and of each definition only what list/map semantics, scalar defaults of
list-map keys, zero values and type checks need.
"""
import json
import pathlib
import sys

# Kinds every sandbox serves: the extract must hold them.
SERVED = {
    "v1": ["Namespace", "ConfigMap", "Secret", "Service", "ServiceAccount", "Pod",
           "PersistentVolumeClaim", "Event"],
    "apps/v1": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
    "batch/v1": ["Job", "CronJob"],
    "networking.k8s.io/v1": ["Ingress", "NetworkPolicy"],
    "rbac.authorization.k8s.io/v1": ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"],
    "coordination.k8s.io/v1": ["Lease"],
    "events.k8s.io/v1": ["Event"],
    "apiextensions.k8s.io/v1": ["CustomResourceDefinition"],
}
KEEP = {
    "type", "format", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
}
PREFIX = "#/components/schemas/"


def simplify(node, refs):
    out = {}
    for part in node.get("allOf", []):
        if "$ref" in part:
            out["$ref"] = part["$ref"][len(PREFIX):]
    if "$ref" in node:
        out["$ref"] = node["$ref"][len(PREFIX):]
    if "$ref" in out:
        refs.append(out["$ref"])
    for k in KEEP:
        if k in node:
            out[k] = node[k]
    # Scalar defaults fill missing list-map keys; `{}` marks a non-pointer
    # struct field, present (empty) in a Go zero object.
    if "default" in node and (not isinstance(node["default"], (dict, list)) or node["default"] == {}):
        out["default"] = node["default"]
    # Required lists and maps are `null` (not absent) in a Go zero object.
    required = [r for r in node.get("required", [])
                if node.get("properties", {}).get(r, {}).get("type") in ("array", "object")]
    if required:
        out["required"] = required
    if "properties" in node:
        out["properties"] = {k: simplify(v, refs) for k, v in sorted(node["properties"].items())}
    if isinstance(node.get("items"), dict):
        out["items"] = simplify(node["items"], refs)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = simplify(node["additionalProperties"], refs)
    return out


def main():
    src = pathlib.Path(sys.argv[1])
    schemas = {}
    for f in sorted(src.glob("api*.json")):
        schemas.update(json.loads(f.read_text())["components"]["schemas"])
    kinds = {}
    for name, node in schemas.items():
        if name.startswith("io.k8s.apimachinery.pkg.apis.meta.") or name.endswith("List"):
            continue
        for gvk in node.get("x-kubernetes-group-version-kind", []):
            gv = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds[f"{gv}/{gvk['kind']}"] = name
    missing = [f"{gv}/{k}" for gv, ks in SERVED.items() for k in ks if f"{gv}/{k}" not in kinds]
    if missing:
        sys.exit(f"kinds not found: {missing}")
    defs = {}
    todo = sorted(set(kinds.values())) + ["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        refs = []
        defs[name] = simplify(schemas[name], refs)
        todo.extend(r for r in refs if r not in defs)
    out = {"kinds": dict(sorted(kinds.items())), "definitions": dict(sorted(defs.items()))}
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
