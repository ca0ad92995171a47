//! Reading Elastic Path deployment packages.
