//! ember on the desktop.
