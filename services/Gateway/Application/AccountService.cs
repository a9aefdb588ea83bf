using System.Security.Cryptography;
using System.Text;
using DataMarket.Gateway.Model;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Gateway.Application;

public sealed class AccountException(string message, int statusCode = StatusCodes.Status400BadRequest) : Exception(message)
{
    public int StatusCode { get; } = statusCode;
}

public sealed record AccountView(string Id, string Name, string Role, DateTime CreatedAt);

public sealed record ApiKeyView(string Id, string Name, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt);

public sealed record AuditView(DateTime At, string ActorId, string Action, string Target);

public sealed record AccountExport(AccountView Account, IReadOnlyList<ApiKeyView> ApiKeys, bool HasPassword, bool SecondFactorEnrolled, IReadOnlyList<AuditView> Audit);

/// <summary>A new key: <see cref="Key"/> is shown this once and never stored.</summary>
public sealed record NewApiKey(ApiKeyView Info, string Key);

/// <summary>Accounts, their API keys and the audit log, kept in the gateway's own database.</summary>
public sealed class AccountService(GatewayDbContext db, TimeProvider time)
{
    public const int MaxNameLength = 100;
    public const int MinPasswordLength = 10;
    public const int MaxPasswordLength = 200;
    private static readonly PasswordHasher<string> s_hasher = new();
    private const string KeyPrefix = "dmk_";

    public async Task<AccountView> CreateAccountAsync(string actorId, string role, string name, CancellationToken cancellationToken)
    {
        if (!Roles.All.Contains(role))
        {
            throw new AccountException($"role must be one of {string.Join(", ", Roles.All)}");
        }

        name = name.Trim();
        if (!IsAccountName(name))
        {
            throw new AccountException($"an account name is 1 to {MaxNameLength} letters, digits, spaces and . _ -");
        }

        if (await db.Accounts.AnyAsync(a => a.Name == name, cancellationToken))
        {
            throw new AccountException("an account with this name already exists", StatusCodes.Status409Conflict);
        }

        var account = new Account
        {
            Id = "acct_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            Name = name,
            Role = role,
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Accounts.Add(account);
        Audit(actorId, "account.create", $"{account.Id} ({role})");
        await db.SaveChangesAsync(cancellationToken);
        return View(account);
    }

    public async Task<AccountView?> FindByNameAsync(string name, CancellationToken cancellationToken) =>
        await db.Accounts.AsNoTracking().Where(a => a.Name == name).Select(a => new AccountView(a.Id, a.Name, a.Role, a.CreatedAt)).SingleOrDefaultAsync(cancellationToken);

    public async Task<NewApiKey> CreateApiKeyAsync(string accountId, string keyName, CancellationToken cancellationToken)
    {
        keyName = keyName.Trim();
        if (!IsAccountName(keyName))
        {
            throw new AccountException($"a key name is 1 to {MaxNameLength} letters, digits, spaces and . _ -");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        var key = new ApiKey
        {
            Id = id,
            AccountId = accountId,
            Name = keyName,
            SecretHash = Hash(secret),
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.ApiKeys.Add(key);
        Audit(accountId, "api-key.create", $"{id} ({keyName})");
        await db.SaveChangesAsync(cancellationToken);
        return new NewApiKey(KeyView(key), $"{KeyPrefix}{id}_{secret}");
    }

    public async Task<IReadOnlyList<ApiKeyView>> ListApiKeysAsync(string accountId, CancellationToken cancellationToken) =>
        (await db.ApiKeys.AsNoTracking().Where(k => k.AccountId == accountId).OrderBy(k => k.CreatedAt).ToListAsync(cancellationToken))
        .Select(KeyView).ToList();

    /// <summary>Revokes one of the account's own keys; another account's key id is "not found", not "forbidden".</summary>
    public async Task RevokeApiKeyAsync(string accountId, string keyId, CancellationToken cancellationToken)
    {
        var key = await db.ApiKeys.SingleOrDefaultAsync(k => k.Id == keyId && k.AccountId == accountId, cancellationToken)
            ?? throw new AccountException("no such key", StatusCodes.Status404NotFound);
        if (key.RevokedAt is null)
        {
            key.RevokedAt = time.GetUtcNow().UtcDateTime;
            Audit(accountId, "api-key.revoke", key.Id);
            await db.SaveChangesAsync(cancellationToken);
        }
    }

    /// <summary>Revokes every key of the account with this name (used when <c>serve</c> issues fresh demo keys).</summary>
    public async Task RevokeApiKeysNamedAsync(string accountId, string keyName, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var key in await db.ApiKeys.Where(k => k.AccountId == accountId && k.Name == keyName && k.RevokedAt == null).ToListAsync(cancellationToken))
        {
            key.RevokedAt = now;
            Audit(accountId, "api-key.revoke", key.Id);
        }

        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>The account a presented key belongs to, or null for a malformed, unknown, forged or revoked key.</summary>
    public async Task<AccountView?> AuthenticateAsync(string presented, CancellationToken cancellationToken)
    {
        if (!presented.StartsWith(KeyPrefix, StringComparison.Ordinal) || presented.Length > 200)
        {
            return null;
        }

        var parts = presented[KeyPrefix.Length..].Split('_', 2);
        if (parts.Length != 2 || parts[0].Length != 16)
        {
            return null;
        }

        var keyId = parts[0];
        var key = await db.ApiKeys.SingleOrDefaultAsync(k => k.Id == keyId, cancellationToken);
        // Hash compared in constant time, so the answer's timing says nothing about how much of a guess was right.
        if (key is null || key.RevokedAt is not null
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(key.SecretHash), Encoding.ASCII.GetBytes(Hash(parts[1]))))
        {
            return null;
        }

        var account = await db.Accounts.AsNoTracking().SingleOrDefaultAsync(a => a.Id == key.AccountId, cancellationToken);
        if (account is null)
        {
            return null;
        }

        var now = time.GetUtcNow().UtcDateTime;
        // Last use to the minute is enough, and spares a write on every request.
        if (key.LastUsedAt is null || now - key.LastUsedAt.Value > TimeSpan.FromMinutes(1))
        {
            key.LastUsedAt = now;
            await db.SaveChangesAsync(cancellationToken);
        }

        return View(account);
    }

    /// <summary>Sets (or replaces) the account's web sign-in password; only a salted PBKDF2 hash is stored.</summary>
    public async Task SetPasswordAsync(string actorId, string accountId, string password, CancellationToken cancellationToken)
    {
        RequirePasswordLength(password);

        if (!await db.Accounts.AnyAsync(a => a.Id == accountId, cancellationToken))
        {
            throw new AccountException("no such account", StatusCodes.Status404NotFound);
        }

        var hash = s_hasher.HashPassword(accountId, password);
        var now = time.GetUtcNow().UtcDateTime;
        var row = await db.Passwords.SingleOrDefaultAsync(p => p.AccountId == accountId, cancellationToken);
        if (row is null)
        {
            db.Passwords.Add(new AccountPassword { AccountId = accountId, Hash = hash, UpdatedAt = now });
        }
        else
        {
            row.Hash = hash;
            row.UpdatedAt = now;
        }

        Audit(actorId, "password.set", accountId);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>
    /// The account with this name and password, or null. Unknown names cost a hash check too, so the answer's timing
    /// does not say which names exist.
    /// </summary>
    public async Task<AccountView?> CheckPasswordAsync(string name, string password, CancellationToken cancellationToken)
    {
        if (name.Length > MaxNameLength || password.Length > MaxPasswordLength)
        {
            return null;
        }

        var found = await (from account in db.Accounts.AsNoTracking()
                           join secret in db.Passwords.AsNoTracking() on account.Id equals secret.AccountId
                           where account.Name == name
                           select new { account, secret.Hash }).SingleOrDefaultAsync(cancellationToken);
        if (found is null)
        {
            s_hasher.VerifyHashedPassword(string.Empty, s_unknownAccountHash, password);
            return null;
        }

        return s_hasher.VerifyHashedPassword(found.account.Id, found.Hash, password) == PasswordVerificationResult.Failed
            ? null
            : View(found.account);
    }

    public static readonly TimeSpan PasswordResetLifetime = TimeSpan.FromHours(24);

    /// <summary>
    /// A one-time link token for resetting this account's password (no mail server here: the operator hands the link
    /// over). Only its hash is stored; it works once, within <see cref="PasswordResetLifetime"/>.
    /// </summary>
    public async Task<string> IssuePasswordResetAsync(string operatorId, string accountName, CancellationToken cancellationToken)
    {
        var account = await FindByNameAsync(accountName.Trim(), cancellationToken)
            ?? throw new AccountException("no account has this name", StatusCodes.Status404NotFound);
        var token = Base64Url(RandomNumberGenerator.GetBytes(32));
        db.PasswordResets.Add(new PasswordReset
        {
            TokenHash = Hash(token),
            AccountId = account.Id,
            IssuedBy = operatorId,
            ExpiresAt = time.GetUtcNow().UtcDateTime + PasswordResetLifetime,
        });
        Audit(operatorId, "password.reset-link", account.Id);
        await db.SaveChangesAsync(cancellationToken);
        return token;
    }

    /// <summary>Whether a reset token is one that would be accepted now (unknown, used and expired ones are not).</summary>
    public async Task<bool> IsPasswordResetValidAsync(string token, CancellationToken cancellationToken)
    {
        if (token.Length is 0 or > 100)
        {
            return false;
        }

        var hash = Hash(token);
        var now = time.GetUtcNow().UtcDateTime;
        return await db.PasswordResets.AnyAsync(r => r.TokenHash == hash && r.UsedAt == null && r.ExpiresAt > now, cancellationToken);
    }

    /// <summary>Sets a new password through a reset token and spends the token; the same refusal for every bad token.</summary>
    public async Task<AccountView> ResetPasswordAsync(string token, string password, CancellationToken cancellationToken)
    {
        RequirePasswordLength(password);
        var hash = Hash(token);
        var now = time.GetUtcNow().UtcDateTime;
        // Spent in one conditional update, so two posts of the same link cannot both set a password.
        var spent = token.Length is > 0 and <= 100
            && await db.PasswordResets.Where(r => r.TokenHash == hash && r.UsedAt == null && r.ExpiresAt > now)
                .ExecuteUpdateAsync(r => r.SetProperty(x => x.UsedAt, now), cancellationToken) == 1;
        if (!spent)
        {
            throw new AccountException("this reset link is not valid (it may have been used or have expired)", StatusCodes.Status404NotFound);
        }

        var accountId = await db.PasswordResets.Where(r => r.TokenHash == hash).Select(r => r.AccountId).SingleAsync(cancellationToken);
        await SetPasswordAsync(accountId, accountId, password, cancellationToken);
        Audit(accountId, "password.reset", accountId);
        await db.SaveChangesAsync(cancellationToken);
        return (await FindAsync(accountId, cancellationToken))!;
    }

    public static void RequirePasswordLength(string password)
    {
        if (password.Length is < MinPasswordLength or > MaxPasswordLength)
        {
            throw new AccountException($"a password is {MinPasswordLength} to {MaxPasswordLength} characters");
        }
    }

    /// <summary>What the gateway holds about an account: the account, its keys (never their secrets) and its own audit entries.</summary>
    public async Task<AccountExport> ExportAsync(string accountId, CancellationToken cancellationToken)
    {
        var account = await FindAsync(accountId, cancellationToken) ?? throw new AccountException("no such account", StatusCodes.Status404NotFound);
        var audit = await db.Audit.AsNoTracking().Where(e => e.ActorId == accountId || e.Target.StartsWith(accountId))
            .OrderBy(e => e.Id).Select(e => new AuditView(e.At, e.ActorId, e.Action, e.Target)).ToListAsync(cancellationToken);
        var hasPassword = await db.Passwords.AnyAsync(p => p.AccountId == accountId, cancellationToken);
        var secondFactor = await db.Totp.AnyAsync(t => t.AccountId == accountId && t.EnabledAt != null, cancellationToken);
        return new AccountExport(account, await ListApiKeysAsync(accountId, cancellationToken), hasPassword, secondFactor, audit);
    }

    /// <summary>
    /// Deletes a seller's or buyer's account after checking its password: first <paramref name="eraseElsewhere"/>
    /// erases what the services hold for it (the catalog's listings, tasks and valuations) and says what went, then the
    /// account, its keys, password and second factor go; the audit log keeps its entries (who did what stays on
    /// record) and records the deletion with that summary. A failed erasure leaves the account in place to try again.
    /// </summary>
    public async Task DeleteAccountAsync(string accountId, string password, CancellationToken cancellationToken, Func<CancellationToken, Task<string>>? eraseElsewhere = null)
    {
        var account = await FindAsync(accountId, cancellationToken) ?? throw new AccountException("no such account", StatusCodes.Status404NotFound);
        if (account.Role == Roles.Operator)
        {
            throw new AccountException("operator accounts are not deleted from the web UI", StatusCodes.Status403Forbidden);
        }

        if (await CheckPasswordAsync(account.Name, password, cancellationToken) is null)
        {
            throw new AccountException("the password is wrong", StatusCodes.Status401Unauthorized);
        }

        var erased = eraseElsewhere is null ? string.Empty : "; " + await eraseElsewhere(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.ApiKeys.Where(k => k.AccountId == accountId).ExecuteDeleteAsync(cancellationToken);
        await db.Passwords.Where(p => p.AccountId == accountId).ExecuteDeleteAsync(cancellationToken);
        await db.Totp.Where(t => t.AccountId == accountId).ExecuteDeleteAsync(cancellationToken);
        await db.PasswordResets.Where(r => r.AccountId == accountId).ExecuteDeleteAsync(cancellationToken);
        await db.Accounts.Where(a => a.Id == accountId).ExecuteDeleteAsync(cancellationToken);
        var target = $"{accountId} ({account.Role}){erased}";
        Audit(accountId, "account.delete", target.Length > 200 ? target[..200] : target);
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<AccountView?> FindAsync(string accountId, CancellationToken cancellationToken) =>
        await db.Accounts.AsNoTracking().Where(a => a.Id == accountId).Select(a => new AccountView(a.Id, a.Name, a.Role, a.CreatedAt)).SingleOrDefaultAsync(cancellationToken);

    public async Task<IReadOnlyList<AccountView>> ListAccountsAsync(CancellationToken cancellationToken) =>
        (await db.Accounts.AsNoTracking().OrderBy(a => a.CreatedAt).ThenBy(a => a.Name).ToListAsync(cancellationToken)).Select(View).ToList();

    /// <summary>Records an action taken through the web UI (sign-in, sign-out, an operator's page views of the audit log).</summary>
    public async Task RecordAsync(string actorId, string action, string target, CancellationToken cancellationToken)
    {
        Audit(actorId, action, target.Length > 200 ? target[..200] : target);
        await db.SaveChangesAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<AuditEntry>> ReadAuditAsync(int limit, CancellationToken cancellationToken) =>
        await db.Audit.AsNoTracking().OrderByDescending(e => e.Id).Take(Math.Clamp(limit, 1, 1000)).ToListAsync(cancellationToken);

    public static bool IsAccountName(string name) =>
        name.Length is > 0 and <= MaxNameLength && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is ' ' or '.' or '_' or '-');

    private void Audit(string actorId, string action, string target) =>
        db.Audit.Add(new AuditEntry { At = time.GetUtcNow().UtcDateTime, ActorId = actorId, Action = action, Target = target });

    private static readonly string s_unknownAccountHash = s_hasher.HashPassword(string.Empty, Convert.ToHexString(RandomNumberGenerator.GetBytes(16)));

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static AccountView View(Account a) => new(a.Id, a.Name, a.Role, a.CreatedAt);

    private static ApiKeyView KeyView(ApiKey k) => new(k.Id, k.Name, k.CreatedAt, k.LastUsedAt, k.RevokedAt);
}
