//! qpage-edge: serves built sites (`dist/`) to the world. Grows in the edge-core issue.
