"""Market view: how the rules move AI compute demand between home and offshore.

A monthly simulation of many firms choosing among their own chips, chips they may buy and
capacity they may rent abroad, every lawful/unlawful choice asked of Straits' rules and every
chip's work sized by its estimator (:mod:`straits.market.simulation`); parameters from the public
record with sources (``straits/catalog/market.yaml``); sweeps over the unpublished ones
(:mod:`straits.market.sweep`). See docs/market.md.
"""

from straits.market.loading import MarketError, load_market
from straits.market.result import MarketResult, MonthRecord
from straits.market.simulation import simulate

__all__ = ["MarketError", "MarketResult", "MonthRecord", "load_market", "simulate"]
