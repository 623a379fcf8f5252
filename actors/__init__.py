"""The actor system: Supervisor, one GroupActor per chat group, GatewayActor, PersistenceActor."""
