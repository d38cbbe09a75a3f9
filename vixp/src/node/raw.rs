//! The raw shape of node.yaml: exactly the keys a node file may hold, each value kept with its
//! line. Only the shape is checked here; the rules of each value belong to the parent module,
//! so that every problem can be reported at once. Must not interpret values.

use serde::Deserialize;

pub(crate) use vixp_fabric::yaml::{Field, Scalar};

/// The whole node file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub member: Field,
    pub private_key_file: Field,
    pub fabric: Field,
    pub interface: Field,
    pub mtu: Field,
    pub listen_port: Field,
    pub metrics: Field,
    pub control_socket: Field,
    pub persistent_keepalive: Field,
    pub offload: Field,
    pub mss_clamp: Field,
    pub workers: Field,
    pub receive_nice: Field,
    pub aqm: Field,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_display_as_written() {
        assert_eq!(Scalar::Text("a".to_owned()).to_string(), "\"a\"");
        assert_eq!(Scalar::Integer(-3).to_string(), "-3");
        assert_eq!(Scalar::Null.to_string(), "nothing");
        assert_eq!(Scalar::Bool(true).to_string(), "true");
    }
}
