using DataMarket.Settlement.Pricing;
using FluentValidation;

namespace DataMarket.SettlementService.Application;

/// <summary>A seller's price terms for one of its listings: reserve and optional list price in cents, and the licence a purchase records.</summary>
/// <param name="Versions">Optional nested-sample versions (fraction of one fixed shuffle, price in cents), checked arbitrage-free when published.</param>
public sealed record PublishTermsRequest(long Reserve, long? ListPrice, string? Licence, IReadOnlyList<VersionPrice>? Versions = null);

/// <summary>
/// A quote for the bundle of a completed tiered-knn-shapley valuation of the buyer's task; or, with
/// <paramref name="ListingId"/> and <paramref name="Fraction"/> instead, for one published version of one listing.
/// </summary>
public sealed record CreateQuoteRequest(Guid ValuationId, decimal? Theta, string? GainPolicy, Guid? ListingId = null, decimal? Fraction = null);

public sealed record CreatePurchaseRequest(Guid QuoteId);

public sealed class PublishTermsRequestValidator : AbstractValidator<PublishTermsRequest>
{
    public const int MaxLicenceLength = 200;

    public PublishTermsRequestValidator()
    {
        RuleFor(r => r.Reserve).InclusiveBetween(0, QuotePricing.MaximumPrice)
            .WithMessage(r => $"the reserve must be between 0 and {QuotePricing.MaximumPrice} cents, got {r.Reserve}");
        RuleFor(r => r.ListPrice).InclusiveBetween(0, QuotePricing.MaximumPrice).When(r => r.ListPrice is not null)
            .WithMessage(r => $"the list price must be between 0 and {QuotePricing.MaximumPrice} cents, got {r.ListPrice}");
        RuleFor(r => r.ListPrice).Must((r, list) => list >= r.Reserve).When(r => r.ListPrice is not null)
            .WithMessage(r => $"the reserve ({r.Reserve} cents) is above the list price ({r.ListPrice} cents)");
        RuleFor(r => r.Versions).Must(v => v is null || v.Count <= PriceCurve.MaximumVersions)
            .WithMessage($"at most {PriceCurve.MaximumVersions} versions");
        RuleForEach(r => r.Versions).NotNull().WithMessage("a version needs a fraction and a price")
            .Must(v => v is null || v.Price <= QuotePricing.MaximumPrice).WithMessage(v => $"a version's price must be at most {QuotePricing.MaximumPrice} cents");
        RuleFor(r => r.Licence).MaximumLength(MaxLicenceLength).Must(l => l is null || !l.Any(char.IsControl))
            .WithMessage("the licence may not contain control characters");
    }
}

public sealed class CreateQuoteRequestValidator : AbstractValidator<CreateQuoteRequest>
{
    /// <summary>A billion dollars per unit of utility: anything above is a typo, not a valuation.</summary>
    public const decimal MaxTheta = 100_000_000_000m;

    public CreateQuoteRequestValidator()
    {
        RuleFor(r => r.ValuationId).NotEmpty().When(r => r.ListingId is null)
            .WithMessage("name a valuationId (a bundle priced by value), or a listingId and fraction (a version)");
        RuleFor(r => r.Fraction).NotNull().InclusiveBetween(0m, 1m).GreaterThan(0m).When(r => r.ListingId is not null)
            .WithMessage(r => $"a version quote needs a fraction in (0, 1], got {r.Fraction?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}");
        RuleFor(r => r.Theta).InclusiveBetween(0m, MaxTheta).When(r => r.Theta is not null)
            .WithMessage(r => $"theta must be between 0 and {MaxTheta} cents per unit of utility, got {r.Theta}");
        RuleFor(r => r.GainPolicy).Must(p => p is null || Enum.TryParse<GainPolicy>(p, ignoreCase: true, out _))
            .WithMessage(r => $"unknown gain policy '{r.GainPolicy}' (supported: estimate, lower95)");
    }
}

public sealed class CreatePurchaseRequestValidator : AbstractValidator<CreatePurchaseRequest>
{
    public CreatePurchaseRequestValidator() => RuleFor(r => r.QuoteId).NotEmpty();
}
