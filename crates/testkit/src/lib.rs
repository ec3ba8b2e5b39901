//! test kit (filled below)
