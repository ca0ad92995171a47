//! Attribute paths: where in a configuration a diagnostic points.

use std::fmt;

use ep_tfproto::tfplugin6 as pb;

/// One step of an [`AttrPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An attribute or nested block of an object.
    Attr(String),
    /// An element of a list or tuple by position.
    Index(i64),
    /// An element of a map by key.
    Key(String),
}

/// A path from the root of a configuration object to one value, as Terraform
/// shows it under a diagnostic (`endpoints.ecr`, `layer[2].mode`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrPath(Vec<PathStep>);

impl AttrPath {
    /// A path to a top-level attribute.
    pub fn root(name: impl Into<String>) -> Self {
        AttrPath(vec![PathStep::Attr(name.into())])
    }

    /// A path from its steps, outermost first.
    pub fn from_steps(steps: Vec<PathStep>) -> Self {
        AttrPath(steps)
    }

    /// This path extended by an attribute name.
    pub fn attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathStep::Attr(name.into()));
        self
    }

    /// This path extended by a list index.
    pub fn index(mut self, i: usize) -> Self {
        self.0
            .push(PathStep::Index(i64::try_from(i).unwrap_or(i64::MAX)));
        self
    }

    /// This path extended by a map key.
    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(PathStep::Key(k.into()));
        self
    }

    /// The steps of this path.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }

    /// The wire form Terraform uses to highlight the attribute.
    pub fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                        PathStep::Index(i) => Selector::ElementKeyInt(*i),
                        PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    }),
                })
                .collect(),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attr(a) => write!(f, ".{a}")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_terraform() {
        let p = AttrPath::root("layer").index(2).attr("mode").key("x");
        assert_eq!(p.to_string(), "layer[2].mode[\"x\"]");
        assert_eq!(p.to_proto().steps.len(), 4);
    }
}
