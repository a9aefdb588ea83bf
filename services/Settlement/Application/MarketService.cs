using System.Security.Cryptography;
using System.Text;
using DataMarket.Catalog.Model;
using DataMarket.Settlement;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Pricing;
using DataMarket.Settlement.Split;
using DataMarket.SettlementService.Infrastructure;
using DataMarket.Valuation;
using DataMarket.Valuation.Statistics;
using FluentValidation;

namespace DataMarket.SettlementService.Application;

/// <summary>
/// Price terms, quotes, purchases, refunds, downloads and payout destinations. State is event streams in the
/// settlement store; money moves only as ledger transfers derived from the purchase (so a resend commits once) and
/// through the payment rails with keys derived from the purchase.
/// </summary>
public sealed class MarketService(
    SettlementStore store,
    LedgerAccess ledger,
    IPaymentRails rails,
    CatalogReader catalog,
    SettlementOptions options,
    TimeProvider time,
    IValidator<PublishTermsRequest> termsValidator,
    IValidator<CreateQuoteRequest> quoteValidator,
    IValidator<CreatePurchaseRequest> purchaseValidator)
{
    public async Task<TermsView> PublishTermsAsync(string sellerId, Guid listingId, PublishTermsRequest request, CancellationToken cancellationToken)
    {
        await ValidateAsync(termsValidator, request, cancellationToken);
        var listing = await catalog.FindListingAsync(listingId, cancellationToken);
        if (listing is null || listing.SellerId != sellerId)
        {
            throw SettlementException.NotFound("listingId", $"listing {listingId}");
        }

        IReadOnlyList<VersionPrice>? versions = null;
        if (request.Versions is { } offered)
        {
            try
            {
                versions = PriceCurve.Publish(offered).Points;
            }
            catch (SettlementInputException exception)
            {
                throw new SettlementException(SettlementErrorKind.Invalid, exception.Field, exception.Reason);
            }
        }

        var published = new TermsPublished(listingId, sellerId, request.Reserve, request.ListPrice, request.Licence ?? "standard", time.GetUtcNow(), versions);
        var stream = TermsStream(listingId);
        var (_, version) = await store.ReadAsync(stream, cancellationToken);
        if (!await store.TryAppendAsync(stream, "listing-terms", version, sellerId, cancellationToken, published))
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "listingId", $"the terms of listing {listingId} changed at the same time; send them again");
        }

        return TermsView.From(published);
    }

    public async Task<TermsView> GetTermsAsync(Guid listingId, CancellationToken cancellationToken) =>
        TermsView.From(await FindTermsAsync(listingId, cancellationToken) ?? throw SettlementException.NotFound("listingId", $"price terms of listing {listingId}"));

    public async Task<QuoteView> CreateQuoteAsync(string buyerId, CreateQuoteRequest request, CancellationToken cancellationToken)
    {
        await ValidateAsync(quoteValidator, request, cancellationToken);
        if (request.ListingId is { } versionOf)
        {
            return await CreateVersionQuoteAsync(buyerId, versionOf, request.Fraction!.Value, cancellationToken);
        }

        var valuation = await catalog.FindValuationAsync(buyerId, request.ValuationId, cancellationToken)
            ?? throw SettlementException.NotFound("valuationId", $"valuation {request.ValuationId}");
        if (valuation.Method != ValuationMethods.TieredKnnShapley)
        {
            throw new SettlementException(SettlementErrorKind.Invalid, "valuationId",
                $"a quote splits by the replication-robust valuation: ask for method '{ValuationMethods.TieredKnnShapley}' (valuation {valuation.Id} used '{valuation.Method}')");
        }

        if (valuation.Status != ValuationStatus.Completed)
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "valuationId", $"valuation {valuation.Id} is {valuation.Status}, not completed");
        }

        var terms = new List<ListingTerms>();
        foreach (var id in valuation.ListingIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Guid.Parse))
        {
            var listing = await catalog.FindListingAsync(id, cancellationToken)
                ?? throw SettlementException.NotFound($"listings[{id}]", $"listing {id}");
            var published = await FindTermsAsync(id, cancellationToken)
                ?? throw new SettlementException(SettlementErrorKind.Conflict, $"listings[{id}]", $"listing {id} has no price terms yet (its seller publishes them with PUT /api/terms/{id})");
            terms.Add(new ListingTerms(id.ToString(), listing.SellerId, published.Reserve, published.ListPrice, published.Licence));
        }

        var values = valuation.Sellers.Select(s => new SellerEstimate(s.SellerId, new ValueEstimate(s.Value, s.StandardError ?? double.NaN))).ToList();
        Quote quote;
        try
        {
            quote = Quote.Create(Guid.NewGuid(), buyerId, valuation.TaskId.ToString(), terms, values, request.Theta ?? options.DefaultTheta,
                Gains.Parse(request.GainPolicy), Fee, options.Currency, time.GetUtcNow(), options.QuoteLifetime);
        }
        catch (SettlementInputException exception)
        {
            throw new SettlementException(SettlementErrorKind.Invalid, exception.Field, exception.Reason);
        }

        var issued = new QuoteIssued(quote.Id, valuation.Id, quote);
        await store.TryAppendAsync(QuoteStream(quote.Id), "quote", 0, buyerId, cancellationToken, issued);
        return QuoteView.From(issued);
    }

    /// <summary>A posted-price quote for one published version (nested sample) of one listing.</summary>
    private async Task<QuoteView> CreateVersionQuoteAsync(string buyerId, Guid listingId, decimal fraction, CancellationToken cancellationToken)
    {
        var listing = await catalog.FindListingAsync(listingId, cancellationToken);
        if (listing is null || listing.Status != ListingStatus.Listed)
        {
            throw SettlementException.NotFound("listingId", $"listing {listingId}");
        }

        var published = await FindTermsAsync(listingId, cancellationToken);
        if (published?.Versions is not { Count: > 0 } versions)
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "listingId", $"listing {listingId} sells no versions (its seller publishes them with PUT /api/terms/{listingId})");
        }

        Quote quote;
        try
        {
            quote = Quote.ForVersion(Guid.NewGuid(), buyerId, new ListingTerms(listingId.ToString(), listing.SellerId, published.Reserve, published.ListPrice, published.Licence),
                PriceCurve.Publish(versions), fraction, Fee, options.Currency, time.GetUtcNow(), options.QuoteLifetime);
        }
        catch (SettlementInputException exception)
        {
            throw new SettlementException(SettlementErrorKind.Invalid, exception.Field, exception.Reason);
        }

        var issued = new QuoteIssued(quote.Id, Guid.Empty, quote);
        await store.TryAppendAsync(QuoteStream(quote.Id), "quote", 0, buyerId, cancellationToken, issued);
        return QuoteView.From(issued);
    }

    public async Task<QuoteView> GetQuoteAsync(string buyerId, Guid quoteId, CancellationToken cancellationToken) =>
        QuoteView.From(await FindQuoteAsync(buyerId, quoteId, cancellationToken) ?? throw SettlementException.NotFound("id", $"quote {quoteId}"));

    /// <summary>
    /// Buys a quote. With an <c>Idempotency-Key</c> (scoped to the buyer) a retry with the same body gets the same
    /// purchase back, and the key with another body is refused. A quote is bought at most once: its purchase id
    /// derives from it, and so do the charge's key and every ledger transfer id.
    /// </summary>
    public async Task<PurchaseView> PurchaseAsync(string buyerId, CreatePurchaseRequest request, string? idempotencyKey, CancellationToken cancellationToken)
    {
        await ValidateAsync(purchaseValidator, request, cancellationToken);
        var purchaseId = PurchasePostings.TransferId(request.QuoteId, "purchase");
        if (idempotencyKey is not null)
        {
            await ClaimKeyAsync(buyerId, idempotencyKey, request, purchaseId, cancellationToken);
        }

        var issued = await FindQuoteAsync(buyerId, request.QuoteId, cancellationToken)
            ?? throw SettlementException.NotFound("quoteId", $"quote {request.QuoteId}");
        if (await FindPurchaseAsync(purchaseId, cancellationToken) is { } done)
        {
            return done;
        }

        var quote = issued.Quote;
        var now = time.GetUtcNow();
        try
        {
            quote.CheckPurchasableBy(buyerId, now);
        }
        catch (SettlementInputException exception)
        {
            throw new SettlementException(SettlementErrorKind.Gone, "quoteId", exception.Reason);
        }

        var chargeReference = "none";
        if (quote.Price > 0)
        {
            // The key derives from the purchase (so from the quote) and is written down before the provider is asked.
            var chargeKey = $"charge:{purchaseId:N}";
            await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<ChargeRequested>().Any(),
                [new ChargeRequested(purchaseId, quote.Id, buyerId, chargeKey, now)], buyerId, cancellationToken);
            var charge = await rails.ChargeAsync(chargeKey, buyerId, quote.Price, quote.Currency, $"purchase:{purchaseId:N}", cancellationToken);
            switch (charge.Outcome)
            {
                case RailsOutcome.Succeeded:
                    chargeReference = charge.ProviderId!;
                    break;
                case RailsOutcome.Pending:
                    // The buyer has to act (or the method confirms later): the provider's webhook completes the purchase.
                    await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<PurchasePending>().Any() || e.OfType<PurchaseCompleted>().Any(),
                        [new PurchasePending(purchaseId, quote.Id, buyerId, quote.Currency, quote.Price, charge.ProviderId!, charge.ClientSecret, now)], buyerId, cancellationToken);
                    return await FindPurchaseAsync(purchaseId, cancellationToken) ?? throw new InvalidOperationException($"purchase {purchaseId} vanished");
                case RailsOutcome.Declined:
                    throw new SettlementException(SettlementErrorKind.PaymentRequired, "quoteId", $"the payment was refused: {charge.Reason}");
                default:
                    throw new SettlementException(SettlementErrorKind.Unavailable, "quoteId", $"the payment provider did not confirm the charge ({charge.Reason}); retry with the same Idempotency-Key");
            }
        }

        await CompleteAsync(purchaseId, quote, chargeReference, cancellationToken);
        return await FindPurchaseAsync(purchaseId, cancellationToken) ?? throw new InvalidOperationException($"purchase {purchaseId} vanished");
    }

    /// <summary>
    /// The provider confirmed a pending charge (webhook): the purchase completes exactly as an immediate one would, with
    /// the ledger ids derived from the purchase, so a duplicate or late confirmation changes nothing. A charge that
    /// succeeds after a failure notice still completes: the buyer's money was taken.
    /// </summary>
    public async Task<bool> ConfirmChargeAsync(Guid purchaseId, string chargeReference, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(PurchaseStream(purchaseId), cancellationToken);
        if (events.OfType<PurchaseCompleted>().Any())
        {
            return false;
        }

        var requested = events.OfType<ChargeRequested>().FirstOrDefault();
        if (requested is null)
        {
            return false;
        }

        var (quoteEvents, _) = await store.ReadAsync(QuoteStream(requested.QuoteId), cancellationToken);
        var quote = quoteEvents.OfType<QuoteIssued>().First().Quote;
        await CompleteAsync(purchaseId, quote, chargeReference, cancellationToken);
        return true;
    }

    /// <summary>The provider says a pending charge failed: the purchase fails unless it completed already (a late, out-of-order notice).</summary>
    public async Task<bool> FailChargeAsync(Guid purchaseId, string reason, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(PurchaseStream(purchaseId), cancellationToken);
        if (!events.OfType<PurchasePending>().Any() || events.OfType<PurchaseCompleted>().Any() || events.OfType<PurchaseFailed>().Any())
        {
            return false;
        }

        await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<PurchaseCompleted>().Any() || e.OfType<PurchaseFailed>().Any(),
            [new PurchaseFailed(purchaseId, reason, time.GetUtcNow())], "provider", cancellationToken);
        return true;
    }

    private async Task CompleteAsync(Guid purchaseId, Quote quote, string chargeReference, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var release = options.RefundWindow <= TimeSpan.Zero;
        var lines = PurchasePostings.Sale(purchaseId, quote.BuyerId, quote.Currency, quote.Split).ToList();
        if (release)
        {
            lines.AddRange(PurchasePostings.Release(purchaseId, quote.Currency, quote.Split));
        }

        await ledger.CommitAsync(lines, $"settlement:{quote.BuyerId}", cancellationToken);
        var completed = new PurchaseCompleted(
            purchaseId, quote.Id, quote.BuyerId, quote.Currency, quote.Split.Gross, quote.Split.Fee,
            quote.Split.Shares.Select(s => new PurchaseShare(s.SellerId, s.Amount, s.Weight)).ToList(),
            quote.Listings.Select(l => new PurchasedListing(Guid.Parse(l.ListingId), l.SellerId, l.Licence, quote.Fraction)).ToList(),
            chargeReference, now, now + options.RefundWindow, release);
        await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<PurchaseCompleted>().Any(), [completed], quote.BuyerId, cancellationToken);
    }

    /// <summary>Appends unless <paramref name="done"/> already holds; a lost race re-reads and decides again.</summary>
    private async Task AppendOnceAsync(string stream, Func<IReadOnlyList<object>, bool> done, object[] events, string actor, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (existing, version) = await store.ReadAsync(stream, cancellationToken);
            if (done(existing) || await store.TryAppendAsync(stream, "purchase", version, actor, cancellationToken, events))
            {
                return;
            }
        }
    }

    public async Task<PurchaseView> GetPurchaseAsync(string buyerId, Guid purchaseId, CancellationToken cancellationToken)
    {
        var purchase = await FindPurchaseAsync(purchaseId, cancellationToken);
        return purchase is not null && purchase.BuyerId == buyerId ? purchase : throw SettlementException.NotFound("id", $"purchase {purchaseId}");
    }

    /// <summary>The buyer's own purchases, newest first (a scan of the purchase events: a report, not a hot path).</summary>
    public async Task<IReadOnlyList<PurchaseView>> ListPurchasesAsync(string buyerId, CancellationToken cancellationToken)
    {
        var ids = new List<Guid>();
        await foreach (var completed in store.ScanAsync(new HashSet<string> { nameof(PurchaseCompleted) }, cancellationToken))
        {
            if (completed is PurchaseCompleted c && c.BuyerId == buyerId)
            {
                ids.Add(c.PurchaseId);
            }
        }

        var purchases = new List<PurchaseView>(ids.Count);
        foreach (var id in ids)
        {
            purchases.Add(await FindPurchaseAsync(id, cancellationToken) ?? throw new InvalidOperationException($"purchase {id} vanished"));
        }

        return purchases.OrderByDescending(p => p.PurchasedAt).ThenBy(p => p.Id).ToList();
    }

    /// <summary>Reverses the sale exactly, inside the refund window only; a second refund answers the first.</summary>
    public async Task<PurchaseView> RefundAsync(string buyerId, Guid purchaseId, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(PurchaseStream(purchaseId), cancellationToken);
        var completed = events.OfType<PurchaseCompleted>().FirstOrDefault();
        if (completed is null && events.OfType<PurchasePending>().FirstOrDefault() is { } pending && pending.BuyerId == buyerId)
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "id", $"purchase {purchaseId} is not paid (its charge is pending or failed); nothing to refund");
        }

        if (completed is null || completed.BuyerId != buyerId)
        {
            throw SettlementException.NotFound("id", $"purchase {purchaseId}");
        }

        if (events.OfType<PurchaseDisputed>().Any())
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "id", $"purchase {purchaseId} is disputed: the bank returns the money, not a refund");
        }

        if (events.OfType<PurchaseRefunded>().Any())
        {
            return View(events);
        }

        var now = time.GetUtcNow();
        if (now >= completed.RefundableUntil || events.OfType<HoldsReleased>().Any() || completed.Released)
        {
            throw new SettlementException(SettlementErrorKind.Conflict, "id", $"the refund window of purchase {purchaseId} closed at {completed.RefundableUntil:O}; the sellers' shares are released");
        }

        var refundReference = "none";
        if (completed.Gross > 0)
        {
            var refundKey = $"refund:{purchaseId:N}";
            await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<RefundRequested>().Any(), [new RefundRequested(purchaseId, refundKey, now)], buyerId, cancellationToken);
            var refund = await rails.RefundAsync(refundKey, completed.ChargeReference, completed.Gross, completed.Currency, cancellationToken);
            refundReference = refund.Outcome == RailsOutcome.Succeeded
                ? refund.ProviderId!
                : throw new SettlementException(SettlementErrorKind.Unavailable, "id", $"the payment provider did not refund ({refund.Reason}); try again");
        }

        await ledger.CommitAsync(PurchasePostings.Refund(purchaseId, buyerId, completed.Currency, SplitOf(completed)), $"settlement:{buyerId}", cancellationToken);
        await AppendOnceAsync(PurchaseStream(purchaseId), e => e.OfType<PurchaseRefunded>().Any(), [new PurchaseRefunded(purchaseId, refundReference, now)], buyerId, cancellationToken);
        return await FindPurchaseAsync(purchaseId, cancellationToken) ?? throw new InvalidOperationException($"purchase {purchaseId} vanished");
    }

    /// <summary>The purchased listing's data, for the buyer who bought it; anyone else (and a refunded purchase) gets not found.</summary>
    public async Task<(Stream Content, string Format, string FileName)> DownloadAsync(string buyerId, Guid purchaseId, Guid? listingId, CancellationToken cancellationToken)
    {
        var purchase = await FindPurchaseAsync(purchaseId, cancellationToken);
        if (purchase is null || purchase.BuyerId != buyerId || purchase.Status is not ("held" or "released"))
        {
            throw SettlementException.NotFound("id", $"purchase {purchaseId}");
        }

        var item = listingId is { } wanted
            ? purchase.Listings.FirstOrDefault(l => l.ListingId == wanted) ?? throw SettlementException.NotFound("listing", $"listing {wanted} in purchase {purchaseId}")
            : purchase.Listings.Count == 1
                ? purchase.Listings[0]
                : throw new SettlementException(SettlementErrorKind.Invalid, "listing",
                    $"the purchase holds {purchase.Listings.Count} listings: name one with ?listing= ({string.Join(", ", purchase.Listings.Select(l => l.ListingId))})");
        var listing = await catalog.FindListingAsync(item.ListingId, cancellationToken);
        if (listing?.BlobId is null)
        {
            throw SettlementException.NotFound("listing", $"the data of listing {item.ListingId}");
        }

        var format = listing.Format ?? "csv";
        if (item.Fraction is { } fraction)
        {
            return (await SampleAsync(catalog.OpenBlob(listing.BlobId), format, listing.Id, fraction, cancellationToken), format, $"{listing.Id}-{fraction}.{format}");
        }

        return (catalog.OpenBlob(listing.BlobId), format, $"{listing.Id}.{format}");
    }

    /// <summary>
    /// The seller's payout account: created once (the provider's key derives from the seller); with Stripe an Express
    /// connected account whose onboarding the seller finishes at the returned link (asking again gives a fresh link).
    /// Payouts wait until the provider says the account can receive transfers.
    /// </summary>
    /// <summary>
    /// Exactly the rows of a version: the nested sample of the listing's data rows (lines after a CSV header, every line
    /// of JSON lines), in file order, the shuffle seeded by the listing id.
    /// </summary>
    private static async Task<Stream> SampleAsync(Stream data, string format, Guid listingId, decimal fraction, CancellationToken cancellationToken)
    {
        string? header = null;
        var rows = new List<string>();
        using (var reader = new StreamReader(data))
        {
            if (format == "csv")
            {
                header = await reader.ReadLineAsync(cancellationToken);
            }

            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.Length > 0)
                {
                    rows.Add(line);
                }
            }
        }

        var keep = new bool[rows.Count];
        foreach (var row in NestedSample.Rows(rows.Count, fraction, BitConverter.ToInt32(listingId.ToByteArray(), 0)))
        {
            keep[row] = true;
        }

        var text = new StringBuilder();
        if (header is not null)
        {
            text.Append(header).Append('\n');
        }

        for (var i = 0; i < rows.Count; i++)
        {
            if (keep[i])
            {
                text.Append(rows[i]).Append('\n');
            }
        }

        return new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
    }

    public async Task<DestinationView> RegisterDestinationAsync(string sellerId, CancellationToken cancellationToken)
    {
        var stream = DestinationStream(sellerId);
        var (events, version) = await store.ReadAsync(stream, cancellationToken);
        if (events.OfType<DestinationRegistered>().LastOrDefault() is { } existing)
        {
            if (Usable(events) is not null)
            {
                return View(existing, true, null);
            }

            var state = await rails.RefreshDestinationAsync(sellerId, existing.AccountId, cancellationToken);
            if (state.Ready)
            {
                await MarkDestinationReadyAsync(sellerId, existing.AccountId, cancellationToken);
            }

            return View(existing, state.Ready, state.OnboardingUrl);
        }

        var account = await rails.CreateDestinationAsync(sellerId, cancellationToken);
        var registered = new DestinationRegistered(sellerId, rails.Name, account.AccountId, time.GetUtcNow(), !account.Ready);
        if (!await store.TryAppendAsync(stream, "payout-destination", version, sellerId, cancellationToken, registered))
        {
            return await RegisterDestinationAsync(sellerId, cancellationToken);
        }

        return View(registered, account.Ready, account.OnboardingUrl);
    }

    public async Task<DestinationView?> FindDestinationAsync(string sellerId, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(DestinationStream(sellerId), cancellationToken);
        return events.OfType<DestinationRegistered>().LastOrDefault() is { } d ? View(d, Usable(events) is not null, null) : null;
    }

    /// <summary>The provider says the account can receive transfers (Stripe's <c>account.updated</c>); a repeat changes nothing.</summary>
    public async Task<bool> MarkDestinationReadyAsync(string sellerId, string accountId, CancellationToken cancellationToken)
    {
        var stream = DestinationStream(sellerId);
        while (true)
        {
            var (events, version) = await store.ReadAsync(stream, cancellationToken);
            if (events.OfType<DestinationRegistered>().LastOrDefault() is not { } registered || registered.AccountId != accountId || Usable(events) is not null)
            {
                return false;
            }

            if (await store.TryAppendAsync(stream, "payout-destination", version, "provider", cancellationToken, new DestinationReady(sellerId, accountId, time.GetUtcNow())))
            {
                return true;
            }
        }
    }

    /// <summary>The registered account when payouts can go to it, else null.</summary>
    internal static DestinationRegistered? Usable(IReadOnlyList<object> destinationEvents) =>
        destinationEvents.OfType<DestinationRegistered>().LastOrDefault() is { } d
        && (!d.AwaitingOnboarding || destinationEvents.OfType<DestinationReady>().Any(r => r.AccountId == d.AccountId))
            ? d
            : null;

    private static DestinationView View(DestinationRegistered d, bool ready, string? onboardingUrl) =>
        new(d.SellerId, d.Provider, d.AccountId, d.RegisteredAt, ready, onboardingUrl);

    private FeePolicy Fee => new(options.FeeRate, options.FeeMinimum);

    private async Task ClaimKeyAsync(string buyerId, string idempotencyKey, CreatePurchaseRequest request, Guid purchaseId, CancellationToken cancellationToken)
    {
        if (idempotencyKey.Length is 0 or > 255 || idempotencyKey.Any(char.IsControl))
        {
            throw new SettlementException(SettlementErrorKind.Invalid, "Idempotency-Key", "the Idempotency-Key header must hold 1 to 255 characters and no control characters");
        }

        var keyHash = Hash($"{buyerId}\n{idempotencyKey}");
        var bodyHash = Hash($"purchase\n{request.QuoteId:N}");
        var stream = $"purchase-key:{keyHash}";
        while (true)
        {
            var (events, _) = await store.ReadAsync(stream, cancellationToken);
            if (events.OfType<PurchaseKeyClaimed>().FirstOrDefault() is { } claimed)
            {
                if (claimed.BodyHash != bodyHash)
                {
                    throw new SettlementException(SettlementErrorKind.Conflict, "Idempotency-Key",
                        $"the Idempotency-Key was used for another request (purchase {claimed.PurchaseId}); a changed body needs a new key");
                }

                return;
            }

            if (await store.TryAppendAsync(stream, "purchase-key", 0, buyerId, cancellationToken, new PurchaseKeyClaimed(buyerId, keyHash, bodyHash, purchaseId)))
            {
                return;
            }
        }
    }

    private async Task<TermsPublished?> FindTermsAsync(Guid listingId, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(TermsStream(listingId), cancellationToken);
        return events.OfType<TermsPublished>().LastOrDefault();
    }

    /// <summary>The buyer's own quote; someone else's reads as missing.</summary>
    private async Task<QuoteIssued?> FindQuoteAsync(string buyerId, Guid quoteId, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(QuoteStream(quoteId), cancellationToken);
        var issued = events.OfType<QuoteIssued>().FirstOrDefault();
        return issued is not null && issued.Quote.BuyerId == buyerId ? issued : null;
    }

    private async Task<PurchaseView?> FindPurchaseAsync(Guid purchaseId, CancellationToken cancellationToken)
    {
        var (events, _) = await store.ReadAsync(PurchaseStream(purchaseId), cancellationToken);
        return events.OfType<PurchaseCompleted>().Any() || events.OfType<PurchasePending>().Any() ? View(events) : null;
    }

    private static PurchaseView View(IReadOnlyList<object> events)
    {
        if (!events.OfType<PurchaseCompleted>().Any())
        {
            var p = events.OfType<PurchasePending>().First();
            var failed = events.OfType<PurchaseFailed>().FirstOrDefault();
            return new PurchaseView(p.PurchaseId, p.QuoteId, p.BuyerId, failed is null ? "pending" : "failed", p.Currency, p.Gross, 0, [], [], p.RequestedAt,
                p.RequestedAt, null, failed is null ? p.ClientSecret : null, failed?.Reason);
        }

        var c = events.OfType<PurchaseCompleted>().First();
        var refunded = events.OfType<PurchaseRefunded>().FirstOrDefault();
        var released = c.Released || events.OfType<HoldsReleased>().Any();
        var disputed = events.OfType<PurchaseDisputed>().FirstOrDefault();
        var dispute = disputed is null ? null : DisputeOf(c, disputed, whileHeld: !c.Released && !events.TakeWhile(e => e is not PurchaseDisputed).OfType<HoldsReleased>().Any());
        var status = dispute is { Partial: true } ? "partly_disputed" : dispute is not null ? "disputed" : refunded is not null ? "refunded" : released ? "released" : "held";
        return new PurchaseView(c.PurchaseId, c.QuoteId, c.BuyerId, status, c.Currency, c.Gross, c.Fee, c.Shares, c.Listings, c.PurchasedAt, c.RefundableUntil, refunded?.RefundedAt,
            Dispute: dispute);
    }

    /// <summary>What the dispute took, recomputed from the sale and its amount (the split is deterministic).</summary>
    private static DisputeView DisputeOf(PurchaseCompleted c, PurchaseDisputed d, bool whileHeld)
    {
        var amount = d.Amount ?? c.Gross;
        var parts = DataMarket.Settlement.Split.DisputeSplit.ProRata(amount, SplitOf(c));
        return new DisputeView(d.DisputeId, amount, amount < c.Gross, whileHeld, parts.Fee, parts.Shares.Select(s => new PurchaseShare(s.SellerId, s.Amount, s.Weight)).ToList());
    }

    internal static SplitResult SplitOf(PurchaseCompleted c) =>
        new(c.Gross, c.Fee, c.Gross - c.Fee, c.Shares.Select(s => new SellerShare(s.SellerId, s.Amount, s.Weight)).ToList(), false);

    internal static string TermsStream(Guid listingId) => $"terms:{listingId:N}";

    internal static string QuoteStream(Guid quoteId) => $"quote:{quoteId:N}";

    internal static string PurchaseStream(Guid purchaseId) => $"purchase:{purchaseId:N}";

    internal static string DestinationStream(string sellerId) => $"destination:{sellerId}";

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private static async Task ValidateAsync<T>(IValidator<T> validator, T request, CancellationToken cancellationToken)
    {
        var result = await validator.ValidateAsync(request, cancellationToken);
        if (!result.IsValid)
        {
            var first = result.Errors[0];
            throw new SettlementValidationException(result.Errors.GroupBy(e => e.PropertyName).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorMessage).ToArray()), first.PropertyName, first.ErrorMessage);
        }
    }
}

/// <summary>FluentValidation's failures, by request field.</summary>
public sealed class SettlementValidationException(IReadOnlyDictionary<string, string[]> errors, string field, string message) : Exception(message)
{
    public IReadOnlyDictionary<string, string[]> Errors { get; } = errors;

    public string Field { get; } = field;
}
