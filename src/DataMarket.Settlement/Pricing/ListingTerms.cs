namespace DataMarket.Settlement.Pricing;

/// <summary>
/// What a listing asks: a reserve (the least it sells for) and an optional list price (the most), integer cents, and
/// the licence terms a purchase records.
/// </summary>
public sealed record ListingTerms
{
    public ListingTerms(string listingId, string sellerId, long reserve, long? listPrice, string licence = "standard")
    {
        if (string.IsNullOrWhiteSpace(listingId))
        {
            throw new SettlementInputException("listing_id", "is empty");
        }

        if (string.IsNullOrWhiteSpace(sellerId))
        {
            throw new SettlementInputException($"listings[{listingId}].seller_id", "is empty");
        }

        if (reserve < 0)
        {
            throw new SettlementInputException($"listings[{listingId}].reserve", $"must be at least 0 cents, got {reserve}");
        }

        if (listPrice is { } list && list < reserve)
        {
            throw new SettlementInputException($"listings[{listingId}].list_price", $"the list price ({list} cents) is below the reserve ({reserve} cents)");
        }

        ListingId = listingId;
        SellerId = sellerId;
        Reserve = reserve;
        ListPrice = listPrice;
        Licence = licence;
    }

    public string ListingId { get; }

    public string SellerId { get; }

    public long Reserve { get; }

    public long? ListPrice { get; }

    public string Licence { get; }
}
