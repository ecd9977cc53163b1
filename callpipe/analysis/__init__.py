"""Analysis of call transcripts: sentiment, intent, entities, topics and coherence."""
