//! Schemas: the shape of a provider, resource or data source configuration.
//!
//! Built with small builders and turned into both the wire form (for
//! `GetProviderSchema`) and the cty [`Type`] used to decode values.

use std::collections::BTreeMap;

use ep_tfproto::tfplugin6 as pb;

use super::dynamic::{Type, Value};
use super::path::AttrPath;

/// Whether the user sets an attribute, the provider does, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; null when it does not.
    Optional,
    /// Only the provider sets it.
    Computed,
    /// The configuration may set it; the provider fills it in when it does not.
    OptionalComputed,
}

/// What a plan says about a computed attribute when the resource changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Recompute {
    /// Unknown after any change: the apply decides it anew (the default).
    #[default]
    OnAnyChange,
    /// Keeps its prior value while these attributes are known and
    /// unchanged; unknown otherwise. An empty list keeps it always, as
    /// terraform-plugin-framework's "use state for unknown" does.
    Unless(Vec<String>),
}

/// One attribute of a [`Block`].
#[derive(Clone, Debug)]
pub struct Attribute {
    /// Name as written in configuration.
    pub name: String,
    /// cty type of the value.
    pub ty: Type,
    /// Who sets the value.
    pub presence: Presence,
    /// Hidden in plans and logs.
    pub sensitive: bool,
    /// Markdown description shown in docs and editors.
    pub description: String,
    /// Deprecated attributes still work but warn.
    pub deprecated: bool,
    /// A change replaces the object instead of updating it.
    pub force_new: bool,
    /// For computed attributes: when an update keeps the prior value.
    pub recompute: Recompute,
    /// Write-only (Terraform 1.11+): the value reaches create and update in
    /// the configuration, and is never kept in plan or state.
    pub write_only: bool,
}

impl Attribute {
    fn new(name: &str, ty: Type, presence: Presence) -> Self {
        Attribute {
            name: name.to_owned(),
            ty,
            presence,
            sensitive: false,
            description: String::new(),
            deprecated: false,
            force_new: false,
            recompute: Recompute::OnAnyChange,
            write_only: false,
        }
    }

    /// Marks the attribute write-only (Terraform 1.11+): a secret the
    /// resource reads from `config` in create and update, and that Terraform
    /// never stores. The framework returns it as null in every plan and
    /// state, and refuses it at validate on an older Terraform. A change to it
    /// alone plans nothing: pair it with a normal attribute (a version) whose
    /// change does.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    /// An attribute the configuration must set.
    pub fn required(name: &str, ty: Type) -> Self {
        Attribute::new(name, ty, Presence::Required)
    }

    /// An attribute the configuration may set.
    pub fn optional(name: &str, ty: Type) -> Self {
        Attribute::new(name, ty, Presence::Optional)
    }

    /// An attribute only the provider sets.
    pub fn computed(name: &str, ty: Type) -> Self {
        Attribute::new(name, ty, Presence::Computed)
    }

    /// An attribute the configuration may set and the provider defaults.
    pub fn optional_computed(name: &str, ty: Type) -> Self {
        Attribute::new(name, ty, Presence::OptionalComputed)
    }

    /// Sets the description.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Marks the attribute sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// A change to this attribute replaces the object.
    pub fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    /// A computed attribute that keeps its prior value on update while
    /// `inputs` are known and unchanged (all updates, if `inputs` is empty).
    pub fn keep_unless_changed(mut self, inputs: &[&str]) -> Self {
        self.recompute = Recompute::Unless(inputs.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Whether the provider may set the value.
    pub fn is_computed(&self) -> bool {
        matches!(
            self.presence,
            Presence::Computed | Presence::OptionalComputed
        )
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: self.ty.to_json(),
            nested_type: None,
            description: self.description.clone(),
            required: self.presence == Presence::Required,
            optional: matches!(
                self.presence,
                Presence::Optional | Presence::OptionalComputed
            ),
            computed: matches!(
                self.presence,
                Presence::Computed | Presence::OptionalComputed
            ),
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: self.write_only,
            deprecation_message: String::new(),
        }
    }
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; an object, null when absent.
    Single,
    /// An ordered list of blocks.
    List,
    /// An unordered set of blocks.
    Set,
}

/// A nested block type of a [`Block`] (`endpoints { … }`).
#[derive(Clone, Debug)]
pub struct NestedBlock {
    /// Block type name as written in configuration.
    pub name: String,
    /// The block's own attributes and blocks.
    pub block: Block,
    /// How it repeats.
    pub nesting: Nesting,
    /// Fewest blocks allowed.
    pub min_items: i64,
    /// Most blocks allowed (0 = no limit).
    pub max_items: i64,
}

/// A configuration block: attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// The attributes, in declaration order.
    pub attributes: Vec<Attribute>,
    /// The nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
}

/// Meta-argument names Terraform keeps in `resource` blocks (`connection`
/// and `provisioner` are consumed by Terraform, never sent to the provider).
pub const RESERVED_RESOURCE_NAMES: &[&str] = &[
    "connection",
    "count",
    "depends_on",
    "for_each",
    "lifecycle",
    "provider",
    "provisioner",
];
/// Meta-argument names Terraform keeps in `data` blocks.
pub const RESERVED_DATA_SOURCE_NAMES: &[&str] =
    &["count", "depends_on", "for_each", "lifecycle", "provider"];

impl Block {
    /// An empty block with a description.
    pub fn new(description: &str) -> Self {
        Block {
            description: description.to_owned(),
            ..Block::default()
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }

    /// Adds a nested block type.
    pub fn block(mut self, name: &str, nesting: Nesting, block: Block) -> Self {
        // Terraform requires min == max for single blocks; 0/0 means optional.
        let (min_items, max_items) = (0, 0);
        self.blocks.push(NestedBlock {
            name: name.to_owned(),
            block,
            nesting,
            min_items,
            max_items,
        });
        self
    }

    /// Fails when a top-level attribute or block takes a name Terraform
    /// keeps for itself: such a value never reaches the provider.
    pub fn check_reserved(&self, reserved: &[&str]) -> Result<(), String> {
        let taken: Vec<&str> = self
            .attributes
            .iter()
            .map(|a| a.name.as_str())
            .chain(self.blocks.iter().map(|b| b.name.as_str()))
            .filter(|n| reserved.contains(n))
            .collect();
        if taken.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} reserved by Terraform: {}",
                if taken.len() == 1 { "name" } else { "names" },
                taken.join(", ")
            ))
        }
    }

    /// Sets every write-only attribute in `v` (an object of this block) to
    /// null, nested blocks included: what plans and states must hold.
    pub fn strip_write_only(&self, v: &mut Value) {
        let Value::Object(map) = v else { return };
        for a in self.attributes.iter().filter(|a| a.write_only) {
            if let Some(slot) = map.get_mut(&a.name) {
                *slot = Value::Null;
            }
        }
        for b in &self.blocks {
            match map.get_mut(&b.name) {
                Some(Value::List(items)) | Some(Value::Set(items)) => {
                    items.iter_mut().for_each(|i| b.block.strip_write_only(i))
                }
                Some(obj @ Value::Object(_)) => b.block.strip_write_only(obj),
                _ => {}
            }
        }
    }

    /// Paths of the write-only attributes that `config` sets (known or not).
    pub fn write_only_set(&self, config: &Value, at: Option<AttrPath>) -> Vec<AttrPath> {
        let Value::Object(map) = config else {
            return Vec::new();
        };
        let path = |name: &str| match &at {
            Some(p) => p.clone().attr(name),
            None => AttrPath::root(name),
        };
        let mut out: Vec<AttrPath> = self
            .attributes
            .iter()
            .filter(|a| a.write_only && map.get(&a.name).is_some_and(|v| !v.is_null()))
            .map(|a| path(&a.name))
            .collect();
        for b in &self.blocks {
            match map.get(&b.name) {
                Some(Value::List(items)) | Some(Value::Set(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        out.extend(b.block.write_only_set(item, Some(path(&b.name).index(i))));
                    }
                }
                Some(obj @ Value::Object(_)) => {
                    out.extend(b.block.write_only_set(obj, Some(path(&b.name))))
                }
                _ => {}
            }
        }
        out
    }

    /// The attribute called `name`, if any.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The cty object type that values of this block have.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            let inner = b.block.implied_type();
            let ty = match b.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
            };
            attrs.insert(b.name.clone(), ty);
        }
        Type::Object(attrs)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_proto(0)),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                        Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                    } as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
            deprecation_message: String::new(),
        }
    }
}

/// A versioned schema: the version lets stored state be upgraded.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Bumped whenever the shape of stored state changes.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A schema at version 0.
    pub fn new(block: Block) -> Self {
        Schema { version: 0, block }
    }

    /// The cty type of a whole value of this schema.
    pub fn value_type(&self) -> Type {
        self.block.implied_type()
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto(self.version)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_names_are_refused() {
        let b = Block::new("")
            .attr(Attribute::optional("count", Type::Number))
            .block("connection", Nesting::Single, Block::new(""));
        let err = b.check_reserved(RESERVED_RESOURCE_NAMES).err();
        assert_eq!(
            err.as_deref(),
            Some("names reserved by Terraform: count, connection")
        );
        let ok = Block::new("").block("tunnel", Nesting::Single, Block::new(""));
        assert!(ok.check_reserved(RESERVED_RESOURCE_NAMES).is_ok());
    }

    use super::*;

    #[test]
    fn write_only_values_are_found_and_stripped_at_any_depth() {
        let b = Block::new("")
            .attr(Attribute::optional("name", Type::String))
            .attr(Attribute::optional("password_wo", Type::String).write_only())
            .block(
                "user",
                Nesting::List,
                Block::new("").attr(Attribute::optional("secret_wo", Type::String).write_only()),
            );
        let obj = |pairs: Vec<(&str, Value)>| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        };
        let mut v = obj(vec![
            ("name", Value::string("n")),
            ("password_wo", Value::string("p")),
            (
                "user",
                Value::List(vec![
                    obj(vec![("secret_wo", Value::Null)]),
                    obj(vec![("secret_wo", Value::string("s"))]),
                ]),
            ),
        ]);
        let set: Vec<String> = b
            .write_only_set(&v, None)
            .iter()
            .map(|p| format!("{:?}", p.steps()))
            .collect();
        assert_eq!(set.len(), 2, "{set:?}");
        assert!(set[1].contains("user") && set[1].contains('1'), "{set:?}");
        b.strip_write_only(&mut v);
        assert!(b.write_only_set(&v, None).is_empty());
        assert_eq!(v.attr("name"), &Value::string("n"));
        assert!(b.to_proto(0).attributes.iter().any(|a| a.write_only));
    }

    #[test]
    fn nested_blocks_shape_the_implied_type() {
        let b = Block::new("x")
            .attr(Attribute::required("name", Type::String))
            .block(
                "endpoints",
                Nesting::Single,
                Block::new("").attr(Attribute::optional("ecr", Type::String)),
            )
            .block(
                "layer",
                Nesting::List,
                Block::new("").attr(Attribute::required("dest", Type::String)),
            );
        let Type::Object(attrs) = b.implied_type() else {
            panic!("object expected")
        };
        assert_eq!(attrs["name"], Type::String);
        assert!(matches!(attrs["endpoints"], Type::Object(_)));
        assert!(matches!(attrs["layer"], Type::List(_)));
        let wire = Schema::new(b).to_proto();
        let block = wire.block.unwrap_or_default();
        assert_eq!(block.block_types.len(), 2);
        assert!(block.attributes[0].required);
    }
}
