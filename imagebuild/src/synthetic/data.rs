//! The data side of the synthetic package: the data population tool zip, the ext-data jar
//! (environments and the SQL changelog) and `ops-spec.json`.

use std::collections::BTreeMap;

use super::rng::Rng;
use super::{layout, Item, Plan, DATA_POPULATION_LAUNCHER, EXT_DATA_SQL_CHANGELOG};

pub(super) fn data_pop_items(plan: &Plan) -> BTreeMap<String, Item> {
    let v = &plan.version;
    let mut items = BTreeMap::new();
    items.insert(
        "data-population.sh".to_string(),
        Item::Script(DATA_POPULATION_LAUNCHER.to_string()),
    );
    items.insert(
        "bin/data-population.sh".to_string(),
        Item::Script(
            "#!/bin/sh\n# Elastic Path data population tool launcher (synthetic: see ../data-population.sh).\n\
             exec \"$(dirname \"$0\")/../data-population.sh\" \"$@\"\n"
                .to_string(),
        ),
    );
    items.insert(
        "config/logback.xml".to_string(),
        Item::Text(
            "<configuration>\n  <root level=\"INFO\"><appender-ref ref=\"STDOUT\"/></root>\n</configuration>\n"
                .to_string(),
        ),
    );
    for (file, kib) in layout::DATA_POP_THIRD_PARTY {
        let size = plan.jar_size(*kib);
        items.insert(
            format!("lib/{file}"),
            Item::Jar {
                file: file.to_string(),
                size,
            },
        );
    }
    for (name, kib) in layout::DATA_POP_PROJECT {
        let file = format!("{name}-{v}.jar");
        let size = plan.jar_size(*kib);
        items.insert(format!("lib/{file}"), Item::Jar { file, size });
    }
    let file = format!("ext-data-population-cli-{v}.jar");
    items.insert(
        format!("lib/{file}"),
        Item::Jar {
            file,
            size: plan.jar_size(60),
        },
    );
    items
}

pub(super) fn ext_data_items(plan: &Plan) -> BTreeMap<String, Item> {
    let v = &plan.version;
    let mut items = BTreeMap::new();
    items.insert(
        "META-INF/MANIFEST.MF".to_string(),
        Item::Text(format!(
            "Manifest-Version: 1.0\r\nImplementation-Title: ext-data\r\nImplementation-Version: {v}\r\n\r\n"
        )),
    );
    for env in layout::ENVIRONMENTS {
        let base = format!("environments/{env}");
        items.insert(
            format!("{base}/database.properties"),
            Item::Text(format!(
                "data.population.host=localhost\ndata.population.port=3306\ndata.population.schemaname=commerce_{env}\n\
                 data.population.username=ep\ndata.population.password=ep\ndata.population.reset_user=root\n\
                 data.population.reset_password=\ndata.population.jdbc.driver=com.mysql.cj.jdbc.Driver\n"
            )),
        );
        items.insert(
            format!("{base}/data-population.properties"),
            Item::Text(format!(
                "data.population.environment={env}\nliquibase.contexts=default,{env}\n"
            )),
        );
        items.insert(
            format!("{base}/filtering.properties"),
            Item::Text(format!(
                "ep.environment={env}\nep.asset.location=/ep/assets\nep.search.url=http://search:8082/search\n"
            )),
        );
        items.insert(
            format!("{base}/files/conf/ep.properties"),
            Item::Text(format!(
                "ep.smtp.host=localhost\nep.environment.name={env}\nep.jms.url=tcp://activemq:61616\n"
            )),
        );
    }
    items.insert(
        "liquibase/ext-changelog.xml".to_string(),
        Item::Text(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<databaseChangeLog xmlns=\"http://www.liquibase.org/xml/ns/dbchangelog\">\n  \
             <includeAll path=\"changesets/\" relativeToChangelogFile=\"true\"/>\n</databaseChangeLog>\n"
                .to_string(),
        ),
    );
    items.insert(
        EXT_DATA_SQL_CHANGELOG.to_string(),
        Item::Text(sql_changelog(plan)),
    );
    let files = (plan.ext_data_text / 400_000).clamp(2, 60);
    let per_file = plan.ext_data_text / files;
    for f in 0..files {
        let mut rng = Rng::for_item(plan.seed, &format!("ext-data:{f}"));
        let mut text = String::with_capacity(per_file as usize + 512);
        text.push_str(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<databaseChangeLog xmlns=\"http://www.liquibase.org/xml/ns/dbchangelog\">\n",
        );
        text.push_str(&format!(
            "  <changeSet id=\"ext-data-{f}\" author=\"ep\">\n"
        ));
        while (text.len() as u64) < per_file {
            let uid = rng.range(1, 9_999_999);
            let price = rng.range(100, 99_999);
            text.push_str(&format!(
                "    <insert tableName=\"TPRODUCTSKU\"><column name=\"UIDPK\" valueNumeric=\"{uid}\"/>\
                 <column name=\"SKUCODE\" value=\"SKU-{:08X}\"/><column name=\"LIST_PRICE\" valueNumeric=\"{}.{:02}\"/></insert>\n",
                rng.next_u64() as u32,
                price / 100,
                price % 100
            ));
        }
        text.push_str("  </changeSet>\n</databaseChangeLog>\n");
        items.insert(
            format!("liquibase/changesets/data-{f:03}.xml"),
            Item::Text(text),
        );
    }
    items
}

/// Products in the SQL changelog.
pub(super) const SQL_PRODUCTS: u64 = 12;

/// The ext-data jar's SQL change sets (Liquibase formatted SQL): the schema and the catalogue
/// for every environment, then settings and a store that differ between `author` and `live`.
pub(super) fn sql_changelog(plan: &Plan) -> String {
    let v = &plan.version;
    let mut rng = Rng::for_item(plan.seed, "sql:products");
    let mut out = format!(
        "--liquibase formatted sql\n\n\
         --changeset ep:ext-schema-1\n\
         CREATE TABLE TSETTING (NAME VARCHAR(128) NOT NULL PRIMARY KEY, VALUE VARCHAR(255) NOT NULL);\n\
         CREATE TABLE TSTORE (UIDPK BIGINT NOT NULL PRIMARY KEY, STORECODE VARCHAR(64) NOT NULL UNIQUE, \
         NAME VARCHAR(255) NOT NULL);\n\
         CREATE TABLE TPRODUCTSKU (UIDPK BIGINT NOT NULL PRIMARY KEY, SKUCODE VARCHAR(64) NOT NULL UNIQUE, \
         LIST_PRICE DECIMAL(10,2) NOT NULL);\n\n\
         --changeset ep:ext-data-catalog-1\n\
         INSERT INTO TSETTING (NAME, VALUE) VALUES ('COMMERCE/SYSTEM/version', '{v}');\n"
    );
    for i in 0..SQL_PRODUCTS {
        let price = rng.range(100, 99_999);
        out.push_str(&format!(
            "INSERT INTO TPRODUCTSKU (UIDPK, SKUCODE, LIST_PRICE) VALUES ({}, 'SKU-{:08X}', {}.{:02});\n",
            1000 + i,
            rng.next_u64() as u32,
            price / 100,
            price % 100
        ));
    }
    for (env, store, changesets) in [
        ("author", "Author Preview Store", "true"),
        ("live", "Live Store", "false"),
    ] {
        out.push_str(&format!(
            "\n--changeset ep:ext-data-{env}-1 context:{env}\n\
             INSERT INTO TSETTING (NAME, VALUE) VALUES ('COMMERCE/ENVIRONMENT', '{env}');\n\
             INSERT INTO TSETTING (NAME, VALUE) VALUES ('COMMERCE/SYSTEM/CHANGESETS/enable', '{changesets}');\n\
             INSERT INTO TSTORE (UIDPK, STORECODE, NAME) VALUES (1, '{}', '{store}');\n",
            env.to_uppercase()
        ));
    }
    out
}

pub(super) fn ops_spec(plan: &Plan) -> String {
    let spec = serde_json::json!({
        "version": plan.version,
        "java": {
            "version": "17",
            "distribution": "zulu",
            "jdk": {
                "url": "https://cdn.azul.com/zulu/bin/zulu17.50.19-ca-jdk17.0.11-linux_x64.tar.gz",
                "sha1": hex::encode(Rng::for_item(plan.seed, "jdk-sha1").next_u64().to_be_bytes().repeat(3)).chars().take(40).collect::<String>()
            },
            "installPath": "/usr/lib/jvm/zulu17",
            "runtimeArguments": "-XX:+UseG1GC -XX:MaxRAMPercentage=75.0 -Dfile.encoding=UTF-8"
        },
        "maven": { "version": "3.9.6" },
        "applicationServer": { "type": "tomcat", "version": "9.0.89" },
        "activemq": { "version": "5.18.4" },
        "databases": [
            { "type": "mysql", "version": "8.0", "awsDeployment": { "type": "aurora", "engineVersion": "8.0.mysql_aurora.3.05.2" } }
        ]
    });
    let mut text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    text.push('\n');
    text
}
