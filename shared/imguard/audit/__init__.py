"""The audit trail: one record per decision, in the JSON log and in a SQL store the operator owns."""
