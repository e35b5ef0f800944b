//! kro-core: the resource-graph engine shared by the hub controller, the CLI
//! and the derive macro. It performs no I/O: everything here is a pure
//! function of the RGD, the instance and the objects observed so far.

pub mod crd;
pub mod rgd;
pub mod simpleschema;
