"""etcd members: who a member is (`member`), its configuration and first start
(`configuration`), joining and leaving the cluster (`membership`), rolling restarts and health
(`restarts`), compaction and defragmentation (`maintenance`)."""
