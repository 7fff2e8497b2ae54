//! The agent's settings: which tools a turn may offer (`CHAT_TOOLS`), how many model calls a
//! turn may make (`AGENT_MAX_STEPS`), how long it may run (`AGENT_DEADLINE_SECS`) and how often a
//! quiet stream says it is alive (`CHAT_STREAM_KEEPALIVE_SECS`).

use std::time::Duration;

use bastion_core::config::{ConfigError, Env, bounded};
use bastion_core::tools::ToolName;

pub const DEFAULT_MAX_STEPS: u32 = 8;
/// The chat routes stream through API Gateway (integration timeout 300 s, the function's too),
/// so a turn is no longer held to the 29 s buffered limit; 120 s fits a few slow tool steps.
pub const DEFAULT_DEADLINE_SECS: u64 = 120;
/// The longest turn: 20 s short of the function's 300 s timeout, which is left to store the
/// turn and end the stream itself before Lambda or API Gateway cut it.
pub const MAX_DEADLINE_SECS: u64 = 280;
/// Well inside the 30 s idle timeout of an edge-optimized endpoint.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The tools offered on every turn, in a fixed order; empty: none.
    pub tools: Vec<ToolName>,
    /// The most model calls one turn makes.
    pub max_steps: u32,
    /// From the turn's start to its last model call or tool run.
    pub deadline: Duration,
    /// A streamed turn with nothing else to send sends a comment this often.
    pub keepalive: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            tools: ToolName::ALL.to_vec(),
            max_steps: DEFAULT_MAX_STEPS,
            deadline: Duration::from_secs(DEFAULT_DEADLINE_SECS),
            keepalive: Duration::from_secs(DEFAULT_KEEPALIVE_SECS),
        }
    }
}

impl AgentConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tools: match env.get("CHAT_TOOLS") {
                None => ToolName::ALL.to_vec(),
                Some(raw) => tool_list(&raw).map_err(|m| ConfigError::new("CHAT_TOOLS", m))?,
            },
            max_steps: bounded(env, "AGENT_MAX_STEPS", DEFAULT_MAX_STEPS, 1..=32)?,
            deadline: Duration::from_secs(bounded(
                env,
                "AGENT_DEADLINE_SECS",
                DEFAULT_DEADLINE_SECS,
                1..=MAX_DEADLINE_SECS,
            )?),
            keepalive: Duration::from_secs(bounded(
                env,
                "CHAT_STREAM_KEEPALIVE_SECS",
                DEFAULT_KEEPALIVE_SECS,
                1..=25,
            )?),
        })
    }

    /// The tools of one turn: the configured ones, narrowed by the request's list when it gives
    /// one. A name that is no tool is refused; a tool the deployment does not offer is not
    /// offered, whatever the request says.
    pub fn narrowed(&self, requested: Option<&[String]>) -> Result<Vec<ToolName>, String> {
        let Some(requested) = requested else {
            return Ok(self.tools.clone());
        };
        let mut wanted = Vec::with_capacity(requested.len());
        for name in requested {
            let tool = ToolName::parse(name)
                .ok_or_else(|| format!("tools: {:?} is not a tool", cut(name)))?;
            wanted.push(tool);
        }
        Ok(self
            .tools
            .iter()
            .copied()
            .filter(|t| wanted.contains(t))
            .collect())
    }
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A comma-separated list of tool names, each at most once; blank means none.
fn tool_list(raw: &str) -> Result<Vec<ToolName>, String> {
    let mut tools = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let tool = ToolName::parse(name).ok_or_else(|| {
            format!("{name:?} is not a tool; known: run_command, read_file, write_file, list_files")
        })?;
        if tools.contains(&tool) {
            return Err(format!("{name} is listed twice"));
        }
        tools.push(tool);
    }
    tools.sort();
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use bastion_core::config::map_env as env;

    use super::*;

    #[test]
    fn unset_offers_every_tool_eight_steps_a_120_second_deadline_and_10_second_keepalives() {
        let c = AgentConfig::from_env(&env(&[])).unwrap();
        assert_eq!(c, AgentConfig::default());
        assert_eq!(c.tools, ToolName::ALL.to_vec());
        assert_eq!(c.max_steps, 8);
        assert_eq!(c.deadline, Duration::from_secs(120));
        assert_eq!(c.keepalive, Duration::from_secs(10));
    }

    #[test]
    fn an_empty_tool_list_offers_none_and_a_list_offers_exactly_those() {
        let none = AgentConfig::from_env(&env(&[("CHAT_TOOLS", "")])).unwrap();
        assert!(none.tools.is_empty());
        let two = AgentConfig::from_env(&env(&[("CHAT_TOOLS", "list_files, read_file")])).unwrap();
        assert_eq!(two.tools, vec![ToolName::ReadFile, ToolName::ListFiles]);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("CHAT_TOOLS", "read_file,shell"),
            ("CHAT_TOOLS", "read_file,read_file"),
            ("AGENT_MAX_STEPS", "0"),
            ("AGENT_MAX_STEPS", "33"),
            ("AGENT_DEADLINE_SECS", "0"),
            ("AGENT_DEADLINE_SECS", "281"),
            ("CHAT_STREAM_KEEPALIVE_SECS", "0"),
            ("CHAT_STREAM_KEEPALIVE_SECS", "26"),
        ] {
            let e = AgentConfig::from_env(&env(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
    }

    #[test]
    fn a_request_narrows_the_configured_tools_and_never_widens_them() {
        let c = AgentConfig::from_env(&env(&[("CHAT_TOOLS", "read_file,list_files")])).unwrap();
        let asked = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(c.narrowed(None).unwrap(), c.tools);
        assert_eq!(
            c.narrowed(Some(&asked(&["read_file"]))).unwrap(),
            vec![ToolName::ReadFile]
        );
        assert_eq!(
            c.narrowed(Some(&asked(&["run_command", "read_file"])))
                .unwrap(),
            vec![ToolName::ReadFile],
            "run_command is not configured, so a request cannot add it"
        );
        assert_eq!(c.narrowed(Some(&[])).unwrap(), Vec::<ToolName>::new());
        assert_eq!(
            c.narrowed(Some(&asked(&["sudo"]))).unwrap_err(),
            "tools: \"sudo\" is not a tool"
        );
    }
}
