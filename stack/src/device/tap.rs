//! STUB: the devices helper writes this module.
