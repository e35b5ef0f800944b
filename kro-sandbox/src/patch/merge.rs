//! JSON merge patch (RFC 7386): objects merge recursively, `null` removes,
//! anything else replaces.

use serde_json::Value;

/// Applies a merge patch to `target` in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The merge patch that turns `from` into `to` (`merge_patch(from, diff) == to`
/// for objects without `null` values).
pub fn create_merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = serde_json::Map::new();
            for (k, av) in a {
                match b.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(bv) if bv != av => {
                        out.insert(k.clone(), create_merge_patch(av, bv));
                    }
                    Some(_) => {}
                }
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    out.insert(k.clone(), bv.clone());
                }
            }
            Value::Object(out)
        }
        _ => to.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut got = target.clone();
            merge_patch(&mut got, &patch);
            assert_eq!(got, want, "{target} + {patch}");
        }
    }

    /// A tiny deterministic generator: cheap property tests without a new dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn value(&mut self, depth: u32) -> Value {
            match self.next(if depth == 0 { 3 } else { 5 }) {
                0 => json!(self.next(4)),
                1 => json!(["x", "y"][self.next(2) as usize]),
                2 => json!([self.next(3)]),
                _ => {
                    let mut m = serde_json::Map::new();
                    for _ in 0..self.next(4) {
                        let k = ["a", "b", "c", "d"][self.next(4) as usize];
                        m.insert(k.into(), self.value(depth - 1));
                    }
                    Value::Object(m)
                }
            }
        }
    }

    #[test]
    fn applying_the_diff_reproduces_the_target_and_is_idempotent() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let from = rng.value(3);
            let to = rng.value(3);
            let diff = create_merge_patch(&from, &to);
            let mut got = from.clone();
            merge_patch(&mut got, &diff);
            assert_eq!(got, to, "from {from} to {to} via {diff}");
            merge_patch(&mut got, &diff);
            assert_eq!(got, to, "idempotent: {diff}");
        }
    }
}
