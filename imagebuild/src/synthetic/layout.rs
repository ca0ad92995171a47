//! What goes where in a synthetic package: jar catalogs with realistic names and relative
//! sizes (in KiB at scale 1), per application.

/// Third-party jars every webapp carries (and so share byte for byte, as in reality).
pub(crate) const COMMON_THIRD_PARTY: &[(&str, u64)] = &[
    ("spring-core-5.3.39.jar", 1500),
    ("spring-beans-5.3.39.jar", 700),
    ("spring-context-5.3.39.jar", 1300),
    ("spring-aop-5.3.39.jar", 380),
    ("spring-expression-5.3.39.jar", 290),
    ("spring-jdbc-5.3.39.jar", 430),
    ("spring-orm-5.3.39.jar", 220),
    ("spring-tx-5.3.39.jar", 330),
    ("spring-web-5.3.39.jar", 1600),
    ("jackson-databind-2.17.2.jar", 1600),
    ("jackson-core-2.17.2.jar", 580),
    ("jackson-annotations-2.17.2.jar", 78),
    ("guava-33.2.1-jre.jar", 3000),
    ("commons-lang3-3.14.0.jar", 660),
    ("commons-io-2.16.1.jar", 500),
    ("commons-collections4-4.4.jar", 750),
    ("commons-codec-1.17.0.jar", 360),
    ("commons-logging-1.3.3.jar", 70),
    ("slf4j-api-2.0.13.jar", 70),
    ("logback-classic-1.5.6.jar", 300),
    ("logback-core-1.5.6.jar", 600),
    ("openjpa-3.2.2.jar", 4600),
    ("ehcache-3.10.8.jar", 1800),
    ("aspectjweaver-1.9.22.jar", 2100),
    ("bcprov-jdk18on-1.78.1.jar", 8300),
    ("xstream-1.4.20.jar", 630),
    ("activemq-client-5.18.4.jar", 1400),
    ("camel-core-engine-3.22.2.jar", 1200),
    ("hibernate-validator-6.2.5.Final.jar", 1300),
    ("jakarta.validation-api-2.0.2.jar", 90),
    ("groovy-3.0.21.jar", 7600),
    ("httpclient-4.5.14.jar", 780),
    ("httpcore-4.4.16.jar", 330),
];

/// Elastic Path platform jars (`<name>-<version>.jar`) every webapp carries.
pub(crate) const COMMON_PROJECT: &[(&str, u64)] = &[
    ("ep-core", 9000),
    ("ep-base", 600),
    ("ep-persistence-api", 400),
    ("ep-persistence-openjpa", 900),
    ("ep-settings", 300),
    ("ep-cache", 200),
];

/// One webapp: file name stem, logical name, and its own jars.
pub(crate) struct WebappSpec {
    pub(crate) name: &'static str,
    pub(crate) artifact_id: &'static str,
    /// Context path and the Java package of its classes.
    pub(crate) package: &'static str,
    pub(crate) third_party: &'static [(&'static str, u64)],
    pub(crate) project: &'static [(&'static str, u64)],
    /// Relative number of classes under `WEB-INF/classes`.
    pub(crate) class_weight: u64,
}

pub(crate) const WEBAPPS: &[WebappSpec] = &[
    WebappSpec {
        name: "cortex",
        artifact_id: "ext-cortex-webapp",
        package: "com/elasticpath/extensions/cortex",
        third_party: &[
            ("org.apache.felix.framework-7.0.5.jar", 750),
            ("rxjava-2.2.21.jar", 2700),
            ("guice-5.1.0.jar", 800),
            ("spring-security-core-5.8.14.jar", 1100),
            ("jersey-server-2.41.jar", 950),
        ],
        project: &[
            ("ep-rs-carts", 400),
            ("ep-rs-orders", 450),
            ("ep-rs-profiles", 380),
            ("ep-rs-items", 420),
            ("ep-rs-searches", 390),
            ("ep-rs-purchases", 410),
            ("ep-rest-api", 1200),
        ],
        class_weight: 4,
    },
    WebappSpec {
        name: "studio",
        artifact_id: "ep-rest-studio",
        package: "com/elasticpath/rest/studio",
        third_party: &[],
        project: &[("ep-rest-studio-resources", 2500)],
        class_weight: 1,
    },
    WebappSpec {
        name: "cm",
        artifact_id: "ext-cm-webapp",
        package: "com/elasticpath/extensions/cm",
        third_party: &[
            ("org.eclipse.rap.rwt-3.26.0.jar", 5200),
            ("org.eclipse.rap.jface-3.26.0.jar", 1200),
            ("org.eclipse.core.runtime-3.29.0.jar", 100),
            ("org.eclipse.equinox.common-3.18.0.jar", 130),
            ("birt-runtime-4.13.0.jar", 8000),
        ],
        project: &[
            ("ep-cmclient-core", 12000),
            ("ep-cmclient-catalog", 3000),
            ("ep-cmclient-store", 1500),
        ],
        class_weight: 3,
    },
    WebappSpec {
        name: "batch",
        artifact_id: "ext-batch-webapp",
        package: "com/elasticpath/extensions/batch",
        third_party: &[
            ("spring-batch-core-4.3.10.jar", 700),
            ("quartz-2.3.2.jar", 690),
        ],
        project: &[("ep-batch", 1200)],
        class_weight: 1,
    },
    WebappSpec {
        name: "integration",
        artifact_id: "ext-integration-webapp",
        package: "com/elasticpath/extensions/integration",
        third_party: &[
            ("camel-jms-3.22.2.jar", 250),
            ("camel-http-3.22.2.jar", 200),
            ("camel-jackson-3.22.2.jar", 60),
            ("camel-quartz-3.22.2.jar", 100),
            ("spring-jms-5.3.39.jar", 310),
            ("quartz-2.3.2.jar", 690),
        ],
        project: &[("ep-integration", 1500)],
        class_weight: 2,
    },
    WebappSpec {
        name: "search",
        artifact_id: "ext-search-webapp",
        package: "com/elasticpath/extensions/search",
        third_party: &[
            ("solr-core-8.11.3.jar", 6300),
            ("solr-solrj-8.11.3.jar", 900),
            ("lucene-core-8.11.3.jar", 3500),
            ("lucene-analyzers-common-8.11.3.jar", 1700),
            ("lucene-queryparser-8.11.3.jar", 400),
            ("zookeeper-3.6.2.jar", 1200),
            ("commons-math3-3.6.1.jar", 2200),
        ],
        project: &[("ep-search", 1500)],
        class_weight: 2,
    },
];

/// Jars of the data population tool besides the common ones.
pub(crate) const DATA_POP_THIRD_PARTY: &[(&str, u64)] = &[
    ("liquibase-core-4.27.0.jar", 2500),
    ("picocli-4.7.6.jar", 400),
    ("spring-core-5.3.39.jar", 1500),
    ("spring-context-5.3.39.jar", 1300),
    ("spring-beans-5.3.39.jar", 700),
    ("commons-io-2.16.1.jar", 500),
    ("slf4j-api-2.0.13.jar", 70),
    ("logback-classic-1.5.6.jar", 300),
    ("logback-core-1.5.6.jar", 600),
];

/// Project jars of the data population tool.
pub(crate) const DATA_POP_PROJECT: &[(&str, u64)] =
    &[("ep-data-population-core", 900), ("ep-core", 9000)];

/// `tools/activemq/lib/` contents.
pub(crate) const ACTIVEMQ_LIBS: &[(&str, u64)] = &[
    ("activemq-client-5.18.4.jar", 1400),
    ("hawtbuf-1.11.jar", 60),
    ("geronimo-jms_1.1_spec-1.1.1.jar", 32),
    ("geronimo-j2ee-management_1.1_spec-1.0.1.jar", 14),
];

/// `database/jdbc/` contents.
pub(crate) const JDBC_DRIVER: (&str, u64) = ("mysql-connector-j-8.4.0.jar", 2500);

/// Environments in the ext-data jar.
pub(crate) const ENVIRONMENTS: &[&str] = &["author", "default", "live"];
