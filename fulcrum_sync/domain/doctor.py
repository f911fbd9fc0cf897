"""What ``doctor`` finds: one check per dependency or setting, each with the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

from fulcrum_sync.domain.outcomes import RunOutcome, derive_outcome

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding.

    :param status: ``ok``, ``warn`` (works, but look), ``fail`` or ``skip`` (could not be
        checked because an earlier check failed).
    :param unreachable: for a failure, True when a dependency is down or unreachable (it may
        come back: exit 3), False when configuration is wrong (exit 2).
    """

    name: str
    status: str
    detail: str
    fix: str | None = None
    unreachable: bool = False


@dataclass(slots=True)
class DoctorReport:
    """Every check, and the settings as they were read (secrets only as set or unset)."""

    checks: list[Check] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    settings_set: list[str] = field(default_factory=list)  # from the environment or .env

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def outcome(self) -> RunOutcome:
        """``succeeded``; ``failed`` when a dependency is unreachable; ``invalid`` when only
        configuration is wrong."""
        failed = [c for c in self.checks if c.status == FAIL]
        return derive_outcome(halted=any(c.unreachable for c in failed), invalid=bool(failed))
