//! IRR data of the members: reading the bgpq4 files the fabric names (`load`) and writing
//! them by running bgpq4 (`refresh`). Owns the files; must not filter routes (the import
//! policy's `irr` filter does) nor signal a running route server.

mod load;
mod refresh;

pub use load::{
    IrrFileError, Loaded, MAX_IRR_FILE_BYTES, load, load_fabric, parse_asns, parse_prefixes,
    read_asns, read_prefixes,
};
pub use refresh::{
    DEFAULT_BGPQ4_TIMEOUT, MemberReport, Outcome, RefreshError, RefreshOptions, refresh,
    write_atomically,
};
