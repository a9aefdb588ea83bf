using DataMarket.ServiceDefaults.Security;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using DataMarket.SettlementService.Jobs;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// HTTP API of settlement. The caller is the subject of the gateway-signed token: buyers see only their own quotes
/// and purchases, sellers only their own terms, destination and statements, operators run and read settlements.
/// </summary>
public static class SettlementApi
{
    public static IEndpointRouteBuilder MapSettlementApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").RequireAuthorization();

        // Stripe calls this without an account; the signature over the raw body is the authentication.
        app.MapPost("/api/payments/stripe/webhook", (HttpContext http, StripeWebhooks webhooks, CancellationToken ct) =>
            Run(async () =>
            {
                using var reader = new StreamReader(http.Request.Body);
                var json = await reader.ReadToEndAsync(ct);
                return Results.Ok(await webhooks.HandleAsync(json, http.Request.Headers["Stripe-Signature"].ToString(), ct));
            }))
            .AllowAnonymous();

        api.MapPut("/terms/{listingId:guid}", (HttpContext http, Guid listingId, PublishTermsRequest request, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.PublishTermsAsync(Actor(http), listingId, request, ct))))
            .RequireAuthorization(Roles.Seller);

        api.MapGet("/terms/{listingId:guid}", (Guid listingId, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.GetTermsAsync(listingId, ct))));

        api.MapPost("/quotes", (HttpContext http, CreateQuoteRequest request, MarketService market, CancellationToken ct) =>
            Run(async () =>
            {
                var quote = await market.CreateQuoteAsync(Actor(http), request, ct);
                return Results.Created($"/api/quotes/{quote.Id}", quote);
            }))
            .RequireAuthorization(Roles.Buyer);

        api.MapGet("/quotes/{id:guid}", (HttpContext http, Guid id, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.GetQuoteAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer);

        api.MapPost("/purchases", (HttpContext http, CreatePurchaseRequest request, MarketService market, CancellationToken ct) =>
            Run(async () =>
            {
                var key = http.Request.Headers.TryGetValue("Idempotency-Key", out var header) ? header.ToString() : null;
                var purchase = await market.PurchaseAsync(Actor(http), request, key, ct);
                // A charge waiting for the buyer (3-D Secure) or the provider: 202, completed later by the webhook.
                return purchase.Status == "pending"
                    ? Results.Accepted($"/api/purchases/{purchase.Id}", purchase)
                    : Results.Created($"/api/purchases/{purchase.Id}", purchase);
            }))
            .RequireAuthorization(Roles.Buyer);

        api.MapGet("/purchases", (HttpContext http, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.ListPurchasesAsync(Actor(http), ct))))
            .RequireAuthorization(Roles.Buyer);

        api.MapGet("/purchases/{id:guid}", (HttpContext http, Guid id, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.GetPurchaseAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer);

        api.MapPost("/purchases/{id:guid}/refund", (HttpContext http, Guid id, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.RefundAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer);

        // Any signed-in caller may ask; everyone but the buyer gets 404, so a purchase's existence is not revealed by a 403.
        api.MapGet("/purchases/{id:guid}/download", (HttpContext http, Guid id, Guid? listing, MarketService market, CancellationToken ct) =>
            Run(async () =>
            {
                var (content, format, fileName) = await market.DownloadAsync(Actor(http), id, listing, ct);
                return Results.Stream(content, format == "jsonl" ? "application/x-ndjson" : "text/csv", fileName);
            }));

        // The sandbox's way to a dispute (with Stripe, charge.dispute.created arrives by webhook): operators only.
        // ?amount= disputes part of the sale (as Stripe's dispute.amount); none, or the gross or more, disputes all of it.
        api.MapPost("/purchases/{id:guid}/dispute", (Guid id, long? amount, DisputeBook disputes, SettlementOptions options, CancellationToken ct) =>
            Run(async () => amount is <= 0
                ? throw new SettlementException(SettlementErrorKind.Invalid, "amount", $"a dispute takes at least 1 cent, got {amount}")
                : options.Rails == RailsKind.Sandbox
                ? Results.Ok(await disputes.OpenAsync($"dp_sandbox_{id:N}", id, amount, ct) ?? throw new SettlementException(SettlementErrorKind.Conflict, "id", $"purchase {id} is not paid or was refunded: nothing to dispute"))
                : throw new SettlementException(SettlementErrorKind.Conflict, "id", "disputes arrive from Stripe by webhook (charge.dispute.created) when the rails are Stripe")))
            .RequireAuthorization(Roles.Operator);

        api.MapPost("/sellers/{id}/destination", (HttpContext http, string id, MarketService market, CancellationToken ct) =>
            Run(async () => Results.Ok(await market.RegisterDestinationAsync(OwnSeller(http, id), ct))))
            .RequireAuthorization(Roles.Seller);

        api.MapGet("/sellers/{id}/statement", (HttpContext http, string id, string? period, SettlementRunner runner, CancellationToken ct) =>
            Run(async () => Results.Ok(await runner.StatementAsync(OwnSellerOrOperator(http, id), period ?? string.Empty, ct))));

        api.MapGet("/settlements", (SettlementRunner runner, CancellationToken ct) =>
            Run(async () => Results.Ok(await runner.ListAsync(ct))))
            .RequireAuthorization(Roles.Operator);

        api.MapGet("/settlements/{period}", (string period, SettlementRunner runner, CancellationToken ct) =>
            Run(async () => Results.Ok(await runner.GetAsync(period, ct) ?? throw SettlementException.NotFound("period", $"a settlement run for {period}"))))
            .RequireAuthorization(Roles.Operator);

        // The ledger's invariants (what `datamarket ledger verify` prints), for the operators' page.
        api.MapGet("/settlements/ledger-verification", (DataMarket.ServiceDefaults.Ledger.LedgerHost ledger, CancellationToken ct) =>
            Run(async () =>
            {
                var report = await (await ledger.Database).VerifyAsync(ct);
                return Results.Ok(new LedgerVerificationView(report.Passed, report.Checks.Select(c => new LedgerCheckView(c.Name, c.Passed, c.Detail)).ToList(), report.ToText()));
            }))
            .RequireAuthorization(Roles.Operator);

        api.MapPost("/settlements/{period}/run", (string period, SettlementScheduler scheduler, CancellationToken ct) =>
            Run(async () =>
            {
                await scheduler.TriggerAsync(period, ct);
                return Results.Accepted($"/api/settlements/{period}");
            }))
            .RequireAuthorization(Roles.Operator);

        return app;
    }

    private static string Actor(HttpContext http) => http.User.AccountId();

    /// <summary>A seller acts on its own account only; another seller's id reads as not found.</summary>
    private static string OwnSeller(HttpContext http, string id) =>
        id == Actor(http) ? id : throw SettlementException.NotFound("id", $"seller {id}");

    private static string OwnSellerOrOperator(HttpContext http, string id) =>
        http.User.IsInRole(Roles.Operator) || (http.User.IsInRole(Roles.Seller) && id == Actor(http))
            ? id
            : throw SettlementException.NotFound("id", $"seller {id}");

    private static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (SettlementValidationException exception)
        {
            return Results.ValidationProblem(exception.Errors, exception.Message, extensions: new Dictionary<string, object?> { ["field"] = exception.Field });
        }
        catch (SettlementException exception)
        {
            var status = exception.Kind switch
            {
                SettlementErrorKind.Invalid => StatusCodes.Status400BadRequest,
                SettlementErrorKind.NotFound => StatusCodes.Status404NotFound,
                SettlementErrorKind.Conflict => StatusCodes.Status409Conflict,
                SettlementErrorKind.PaymentRequired => StatusCodes.Status402PaymentRequired,
                SettlementErrorKind.Gone => StatusCodes.Status410Gone,
                SettlementErrorKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
                _ => StatusCodes.Status500InternalServerError,
            };
            return Results.Problem(exception.Message, statusCode: status, extensions: new Dictionary<string, object?> { ["field"] = exception.Field });
        }
    }
}
