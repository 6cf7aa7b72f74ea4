"""Rank papers against a subscriber's keyword profile. (owned by the ranking helper)

    def rank_papers(papers: Sequence[Paper], subscriber: Subscriber) -> list[RankedPaper]
"""
