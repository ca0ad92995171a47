//! The standard lifecycle every resource and data source goes through.

use crate::workdir::Workdir;

/// A check run on a working directory after a step.
pub type Check = Box<dyn Fn(&Workdir)>;
/// Computes an import ID from the applied working directory.
type ImportId = Box<dyn Fn(&Workdir) -> String>;

/// One configuration applied in turn, with checks on the result.
pub struct Step {
    /// `main.tf` for this step.
    pub config: String,
    /// Checks on the working directory after apply and the empty-plan guards.
    pub check: Option<Check>,
}

/// A lifecycle test: steps, optional import, destroy, leftovers check.
pub struct Scenario {
    files: Vec<(String, String)>,
    steps: Vec<Step>,
    imports: Vec<(String, ImportId)>,
    ignore_on_import: Vec<String>,
    destroyed: Option<Box<dyn Fn()>>,
    env: Vec<(String, String)>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

impl Scenario {
    /// An empty scenario.
    pub fn new() -> Self {
        Scenario {
            files: Vec::new(),
            steps: Vec::new(),
            imports: Vec::new(),
            ignore_on_import: Vec::new(),
            destroyed: None,
            env: Vec::new(),
        }
    }

    /// An extra file present in every step (variables, fixtures).
    pub fn file(mut self, name: &str, content: &str) -> Self {
        self.files.push((name.to_owned(), content.to_owned()));
        self
    }

    /// An environment variable for every terraform command (and so for the
    /// provider it starts).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Adds a step applying `config`.
    pub fn step(mut self, config: impl Into<String>, check: impl Fn(&Workdir) + 'static) -> Self {
        self.steps.push(Step {
            config: config.into(),
            check: Some(Box::new(check)),
        });
        self
    }

    /// After the last step, imports `address` into a fresh working directory
    /// with the same configuration, using the ID `id(workdir)` computes, and
    /// compares every attribute with the applied state.
    pub fn import(mut self, address: &str, id: impl Fn(&Workdir) -> String + 'static) -> Self {
        self.imports.push((address.to_owned(), Box::new(id)));
        self
    }

    /// Attributes that import cannot know (write-only inputs such as a local path).
    pub fn ignore_on_import(mut self, attrs: &[&str]) -> Self {
        self.ignore_on_import
            .extend(attrs.iter().map(|a| (*a).to_owned()));
        self
    }

    /// A check through the API, after destroy, that nothing is left.
    pub fn destroyed(mut self, check: impl Fn() + 'static) -> Self {
        self.destroyed = Some(Box::new(check));
        self
    }

    /// Runs it all.
    pub fn run(self) {
        let files: Vec<(&str, &str)> = self
            .files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let workdir = || {
            let mut wd = Workdir::new(&files);
            for (k, v) in &self.env {
                wd.set_env(k, v);
            }
            wd
        };
        let wd = workdir();
        let mut last_config = String::new();
        for (i, step) in self.steps.iter().enumerate() {
            wd.write("main.tf", &step.config);
            if i == 0 {
                wd.init();
            }
            wd.ok(&["validate", "-no-color"]);
            wd.ok(&["plan", "-input=false", "-no-color"]);
            wd.apply();
            wd.assert_plan_empty(false);
            wd.assert_plan_empty(true);
            if let Some(check) = &step.check {
                check(&wd);
            }
            last_config = step.config.clone();
        }
        for (address, id) in &self.imports {
            let applied = wd.resource_values(address);
            let fresh = workdir();
            fresh.write("main.tf", &last_config);
            fresh.init();
            let id = id(&wd);
            fresh.ok(&["import", "-input=false", "-no-color", address, &id]);
            let imported = fresh.resource_values(address);
            compare_attrs(address, &applied, &imported, &self.ignore_on_import);
            // The imported object is the same one: forget it rather than destroy it twice.
            fresh.ok(&["state", "rm", address]);
        }
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        let state = wd.state_json();
        assert!(
            state["values"]["root_module"]["resources"]
                .as_array()
                .is_none_or(|r| r.iter().all(|r| r["mode"] == "data")),
            "resources left in state after destroy:\n{state:#}"
        );
        if let Some(check) = &self.destroyed {
            check();
        }
    }
}

fn compare_attrs(
    address: &str,
    applied: &serde_json::Value,
    imported: &serde_json::Value,
    ignore: &[String],
) {
    let (Some(a), Some(b)) = (applied.as_object(), imported.as_object()) else {
        panic!("{address}: state values are not objects");
    };
    for (k, v) in a {
        if ignore.contains(k) {
            continue;
        }
        assert_eq!(
            Some(v),
            b.get(k),
            "{address}: attribute {k} differs after import"
        );
    }
}
