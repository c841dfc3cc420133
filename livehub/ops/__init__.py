"""Operations: metrics, logs, health, readiness and drain (issue 12)."""
