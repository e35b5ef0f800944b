//! Read-only walking of a structural OpenAPI schema (the generated spec
//! schema, or a built-in kind's schema), for static checks of `schema.spec.*`
//! paths and for type inference.

use serde_json::Value;

/// A view of one node of an OpenAPI v3 schema.
#[derive(Debug, Clone, Copy)]
pub struct SchemaNode<'a>(&'a Value);

impl<'a> SchemaNode<'a> {
    /// Wraps a schema node.
    pub fn new(schema: &'a Value) -> Self {
        SchemaNode(schema)
    }

    /// The raw JSON of this node.
    pub fn raw(&self) -> &'a Value {
        self.0
    }

    /// The OpenAPI `type` (`string`, `integer`, `number`, `boolean`,
    /// `object`, `array`), if declared.
    pub fn type_name(&self) -> Option<&'a str> {
        self.0.get("type").and_then(Value::as_str)
    }

    /// A declared property (`properties.<name>`).
    pub fn property(&self, name: &str) -> Option<SchemaNode<'a>> {
        self.0
            .get("properties")
            .and_then(|p| p.get(name))
            .map(SchemaNode)
    }

    /// What `self.<name>` reads: a declared property, else the map value
    /// schema of `additionalProperties`.
    pub fn field(&self, name: &str) -> Option<SchemaNode<'a>> {
        self.property(name).or_else(|| self.additional_properties())
    }

    /// The element schema of an array.
    pub fn items(&self) -> Option<SchemaNode<'a>> {
        self.0
            .get("items")
            .filter(|i| i.is_object())
            .map(SchemaNode)
    }

    /// The value schema of a map (`additionalProperties` as a schema).
    pub fn additional_properties(&self) -> Option<SchemaNode<'a>> {
        self.0
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .map(SchemaNode)
    }

    /// True when any field name is acceptable below this node: `object`
    /// with `x-kubernetes-preserve-unknown-fields`, `additionalProperties:
    /// true`, or an `int-or-string`/untyped node.
    pub fn is_open(&self) -> bool {
        self.0
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || self.0.get("additionalProperties") == Some(&Value::Bool(true))
            || self
                .0
                .get("x-kubernetes-int-or-string")
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// True when `name` is in this object's `required` list.
    pub fn is_required(&self, name: &str) -> bool {
        self.0
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(name)))
    }

    /// The node's default, if any.
    pub fn default(&self) -> Option<&'a Value> {
        self.0.get("default")
    }

    /// Follows a dotted path of field names (`database.port`); `[]` steps
    /// into array items, e.g. `endpoints.[].url`.
    pub fn path(&self, path: &str) -> Option<SchemaNode<'a>> {
        path.split('.')
            .filter(|s| !s.is_empty())
            .try_fold(*self, |node, step| {
                if step == "[]" {
                    node.items()
                } else {
                    node.field(step)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_properties_maps_and_items() {
        let s = json!({
            "type": "object",
            "required": ["db"],
            "properties": {
                "db": {"type": "object", "properties": {"port": {"type": "integer", "default": 5432}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "ports": {"type": "array", "items": {"type": "integer"}},
                "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        });
        let root = SchemaNode::new(&s);
        assert!(root.is_required("db"));
        assert!(!root.is_required("labels"));
        let port = root.path("db.port").unwrap();
        assert_eq!(port.type_name(), Some("integer"));
        assert_eq!(port.default(), Some(&json!(5432)));
        assert_eq!(
            root.path("labels.anything").unwrap().type_name(),
            Some("string")
        );
        assert_eq!(root.path("ports.[]").unwrap().type_name(), Some("integer"));
        assert!(root.path("db.missing").is_none());
        let values = root.property("values").unwrap();
        assert!(values.is_open());
        assert!(values.field("x").is_none());
        assert!(std::ptr::eq(root.raw(), &s));
    }
}
