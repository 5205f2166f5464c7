//! qpage-generator: turns a site directory into a complete static site.
