"""Rules: Cedar policy packs evaluated with cedarpy, combined into explained decisions."""

from straits.rules.decision import Decision, Reason
from straits.rules.engine import RuleSet, ruleset
from straits.rules.pack_loader import Pack, Rule, load_packs

__all__ = ["Decision", "Pack", "Reason", "Rule", "RuleSet", "load_packs", "ruleset"]
