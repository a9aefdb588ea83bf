using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;

namespace Microsoft.AspNetCore.Builder;

public sealed record SignUpRequest(string Role, string Name);

public sealed record CreateAccountRequest(string Role, string Name);

public sealed record CreateKeyRequest(string Name);

/// <summary>The gateway's own API: sign-up, the caller's account and keys, and the operators' account and audit calls.</summary>
public static class AccountsApi
{
    public static IEndpointRouteBuilder MapAccountsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("accounts");

        // Sellers and buyers sign themselves up; operators are made by operators (or the CLI).
        api.MapPost("/signup", (SignUpRequest request, AccountService accounts, CancellationToken ct) => Run(async () =>
        {
            if (request.Role is not (Roles.Seller or Roles.Buyer))
            {
                throw new AccountException("sign up as a seller or a buyer");
            }

            var account = await accounts.CreateAccountAsync("self", request.Role, request.Name, ct);
            var key = await accounts.CreateApiKeyAsync(account.Id, "first key", ct);
            return Results.Created("/api/me", new { account, apiKey = key.Key });
        })).AllowAnonymous()
            .WithSummary("Sign up as a seller or a buyer; answers the account and its first API key (shown once)")
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/me", async (HttpContext http, AccountService accounts, CancellationToken ct) =>
            Results.Ok(new { id = http.User.AccountId(), name = http.User.FindFirst("name")?.Value, role = http.User.FindFirst("role")?.Value, keys = await accounts.ListApiKeysAsync(http.User.AccountId(), ct) }))
            .WithSummary("The caller's account and its API keys (never the keys themselves)");

        api.MapPost("/me/keys", (HttpContext http, CreateKeyRequest request, AccountService accounts, CancellationToken ct) => Run(async () =>
        {
            var key = await accounts.CreateApiKeyAsync(http.User.AccountId(), request.Name, ct);
            return Results.Created($"/api/me/keys/{key.Info.Id}", new { key.Info, apiKey = key.Key });
        }))
            .WithSummary("Make a named API key; the key is in this answer only")
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapDelete("/me/keys/{id}", (HttpContext http, string id, AccountService accounts, CancellationToken ct) => Run(async () =>
        {
            await accounts.RevokeApiKeyAsync(http.User.AccountId(), id, ct);
            return Results.NoContent();
        }))
            .WithSummary("Revoke one of the caller's keys")
            .ProducesProblem(StatusCodes.Status404NotFound);

        api.MapPost("/accounts", (HttpContext http, CreateAccountRequest request, AccountService accounts, CancellationToken ct) => Run(async () =>
        {
            var account = await accounts.CreateAccountAsync(http.User.AccountId(), request.Role, request.Name, ct);
            var key = await accounts.CreateApiKeyAsync(account.Id, "first key", ct);
            return Results.Created("/api/me", new { account, apiKey = key.Key });
        })).RequireAuthorization(Roles.Operator)
            .WithSummary("Create an account of any role with its first API key (operators)")
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/audit", async (int? limit, AccountService accounts, CancellationToken ct) =>
            Results.Ok(await accounts.ReadAuditAsync(limit ?? 100, ct)))
            .RequireAuthorization(Roles.Operator)
            .WithSummary("The latest audit-log entries, newest first (operators)");
        return app;
    }

    private static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (AccountException exception)
        {
            return Results.Problem(exception.Message, statusCode: exception.StatusCode);
        }
    }
}
